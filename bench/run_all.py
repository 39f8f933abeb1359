"""Run every benchmark within one time budget and write bench/results/SUMMARY.md.

Each benchmark runs as its own subprocess with its own time limit (sized so the whole run fits the
budget on a 2-core machine), prints its figures as it goes and writes bench/results/<name>.json; this
script then reads those files and writes one Markdown table in which every figure stands next to the
baseline measured in the same run and their ratio, with the target where there is one.

    python bench/run_all.py [--budget 870] [--only channel_intake memory ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
LOGS = RESULTS / "logs"


@dataclass
class Step:
    name: str
    args: list[str]
    limit: float  # seconds
    env: dict[str, str] = field(default_factory=dict)


PLAN = [
    # 30 s at half the max rate: long enough that one database checkpoint stall (about 200 ms, once a
    # minute) weighs what it does in service, not 2% of the samples as in a 10 s window.
    Step(
        "channel_intake",
        ["bench/channel_intake.py", "--requests", "2000", "--rounds", "5", "--half-seconds", "30"],
        180,
    ),
    Step("intake", ["bench/intake.py", "--submissions", "2000"], 120),
    Step("wechat_ack", ["bench/wechat_ack.py", "--seconds", "8"], 90),
    Step("telegram_send", ["bench/telegram_send.py"], 60),
    Step("email_intake", ["bench/email_intake.py"], 90, {"BENCH_EMAILS": "500"}),
    Step("match_quality", ["bench/match_quality.py", "--quick"], 60),
    Step("match_latency", ["bench/match_latency.py", "--quick"], 90),
    Step("history", ["bench/history.py", "--large", "100000", "--rounds", "3", "--messages", "40"], 200),
    Step("reports", ["bench/reports.py", "--tickets", "20000"], 90),
    Step("memory", ["bench/memory.py", "--conversations", "10000", "--handle-seconds", "5"], 300),
    Step("scale_out", ["bench/scale_out.py", "--per-channel", "60"], 180),
]


def run_step(step: Step, limit: float) -> dict[str, Any]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{step.name}.log"
    result_path = RESULTS / f"{step.name}.json"
    before = result_path.stat().st_mtime if result_path.exists() else 0.0
    started = time.monotonic()
    print(f"\n=== {step.name} (limit {limit:.0f} s) ===", flush=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **step.env}
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, *step.args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # a timeout stops the benchmark and the servers it started
        )
        assert proc.stdout is not None
        status = "ok"
        deadline = started + limit
        os.set_blocking(proc.stdout.fileno(), False)
        while True:
            line = proc.stdout.readline()
            if line:
                print(f"  {line}", end="", flush=True)
                log.write(line)
                continue
            if proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                status = "timeout"
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait()
                break
            time.sleep(0.05)
        rest = proc.stdout.read() or ""
        log.write(rest)
        print("".join(f"  {r}\n" for r in rest.splitlines()), end="")
    if status == "ok" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode})"
    fresh = result_path.exists() and result_path.stat().st_mtime > before
    if status == "ok" and not fresh:
        status = "no results written"
    return {"name": step.name, "status": status, "seconds": round(time.monotonic() - started, 1)}


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return None


# -- the summary: figure | value | baseline (same run) | ratio | target | met ----------------------------

Row = tuple[str, str, str, str, str, str]


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base else "-"


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "**not met**")


def rows_channel_intake(d: dict[str, Any]) -> list[Row]:
    raw = d["raw_insert_per_second"]
    raw_s = f"raw insert_many {raw:.0f} docs/s"
    rows: list[Row] = [
        ("raw batch insert (baseline)", f"{raw:.0f} docs/s", "-", "-", "", ""),
        (
            "bare aiohttp handler (HTTP ceiling)",
            f"{d['http_ceiling_per_second']:.0f} req/s",
            raw_s,
            f"{d['http_ceiling_ratio_to_raw']:.2f}",
            "",
            "",
        ),
    ]
    for name, label in (
        ("webform", "web form"),
        ("telegram", "Telegram webhook"),
        ("wechat", "WeChat callback"),
    ):
        c = d["channels"][name]
        target = f">= {c['target_ratio_to_raw']:.2f} x raw" if "target_met" in c else ""
        rows.append(
            (
                f"{label} intake (p50 {c['p50_ms']:.0f} ms, p99 {c['p99_ms']:.0f} ms; "
                f"{c['ratio_to_ceiling']:.2f} x ceiling)",
                f"{c['per_second']:.0f} msg/s",
                raw_s,
                f"{c['ratio_to_raw']:.2f}",
                target,
                _met(c.get("target_met")),
            )
        )
    h = d["wechat_half_rate"]
    rows.append(
        (
            f"WeChat callback p99 at half the max rate ({h['target_rate_per_s']}/s)",
            f"{h['p99_ms']:.1f} ms",
            f"max rate {h['max_rate_per_s']:.0f}/s",
            "0.50 (rate)",
            "< 100 ms",
            _met(h["target_met"]),
        )
    )
    return rows


def rows_intake(d: dict[str, Any]) -> list[Row]:
    raw = d["raw_insert"]["docs_per_second"]
    e2e = d["end_to_end"]["tickets_per_second"]
    return [
        (
            "web form intake (bench/intake.py, 64 clients)",
            f"{d['intake']['accepted_per_second']:.0f} /s",
            f"raw {raw:.0f} docs/s",
            f"{d['ratio']:.2f}",
            ">= 0.60",
            _met(d["ratio"] >= 0.6),
        ),
        (
            "web form end to end (tickets created)",
            f"{e2e:.0f} tickets/s",
            f"raw {raw:.0f} docs/s",
            _ratio(e2e, raw),
            "",
            "",
        ),
    ]


def rows_wechat_ack(d: dict[str, Any]) -> list[Row]:
    peak, half = d["closed_loop"], d["open_loop_half_rate"]
    dialog = d["open_loop_with_dialog"]
    return [
        (
            "WeChat ack, closed loop (in-process load)",
            f"{peak['rate_per_s']}/s, p99 {peak['p99_ms']} ms",
            "-",
            "-",
            "",
            "",
        ),
        (
            "WeChat ack p99 at half max (in-process load)",
            f"{half['p99_ms']} ms",
            f"max {peak['rate_per_s']}/s",
            "0.50 (rate)",
            "< 100 ms",
            _met(half["p99_ms"] < 100),
        ),
        (
            "WeChat ack with the dialog",
            f"p99 {dialog['p99_ms']} ms at {dialog['achieved_rate_per_s']}/s",
            "-",
            "-",
            "",
            "",
        ),
    ]


def rows_telegram_send(d: dict[str, Any]) -> list[Row]:
    rate = d["achieved_rate_per_second"] or 0.0
    per_chat = d["max_per_chat_rate_per_second"] or 0.0
    return [
        (
            "Telegram outbox delivery rate",
            f"{rate:.1f} msg/s",
            "limit 30/s",
            _ratio(rate, 30),
            "<= 1.00",
            _met(rate <= 30.5),
        ),
        (
            "Telegram busiest second",
            f"{d['busiest_second']} msgs",
            "limit 30",
            _ratio(d["busiest_second"], 30),
            "<= 1.00",
            _met(d["busiest_second"] <= 30),
        ),
        (
            "Telegram max rate to one chat",
            f"{per_chat:.2f} msg/s",
            "limit 1/s",
            _ratio(per_chat, 1),
            "<= ~1",
            _met(per_chat <= 1.1),
        ),
        (
            "Telegram 429 retry_after honoured",
            f"{d['http_429_honoured']} of {d['http_429_seen']}",
            "-",
            _ratio(d["http_429_honoured"], d["http_429_seen"] or 1),
            "1.00",
            _met(d["http_429_honoured"] == d["http_429_seen"]),
        ),
        (
            "Telegram lost / dead",
            f"{d['lost']} / {d['outbox_dead']}",
            f"{d['messages']} sent",
            "-",
            "0",
            _met(d["lost"] == 0),
        ),
    ]


def rows_email_intake(d: dict[str, Any], raw: float | None) -> list[Row]:
    rate = d["intake_messages_per_second"]
    return [
        (
            f"email intake, IMAP to inbox ({d['mails']} mails, start-up included)",
            f"{rate:.1f} mails/s",
            f"raw {raw:.0f} docs/s (channel_intake)" if raw else "-",
            _ratio(rate, raw) if raw else "-",
            "",
            "",
        ),
        ("email parse cost", f"mean {d['parse_ms_mean']} ms, p95 {d['parse_ms_p95']} ms", "-", "-", "", ""),
    ]


def rows_memory(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"gateway RSS, {d['conversations_driven']:,} conversations in the process at once (peak)",
            f"{d['peak_rss_mb']:.0f} MB",
            f"idle {d['baseline_rss_mb']:.0f} MB",
            f"{d['peak_rss_mb'] / d['baseline_rss_mb']:.2f}",
            "< 400 MB",
            _met(d["target_met"]),
        ),
        (
            "dialog throughput during the memory run",
            f"{d['dialog_messages_per_second']} msg/s ({d['handled']:,} handled)",
            "-",
            "-",
            "",
            "",
        ),
    ]


def rows_history(d: dict[str, Any]) -> list[Row]:
    (small, a), (large, b) = d["sizes"].items()
    rows: list[Row] = [
        (
            f"per-message cost (web form to ticket) at {int(large):,} tickets",
            f"{b['ms_per_message']:.1f} ms",
            f"{a['ms_per_message']:.1f} ms at {int(small):,}",
            f"{d['per_message_ratio']:.2f}",
            "within 20%",
            _met(d["target_met"]),
        )
    ]
    for name, ratio in d["query_ratios"].items():
        rows.append(
            (
                f"{name.replace('_', ' ')} at {int(large):,} tickets",
                f"{b['queries_ms'][name]:.1f} ms",
                f"{a['queries_ms'][name]:.1f} ms at {int(small):,}",
                f"{ratio:.2f}",
                "",
                "",
            )
        )
    return rows


def rows_reports(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"slowest report on {d['tickets']:,} tickets (bench/reports.py)",
            f"{d['slowest_report_ms']:.0f} ms",
            "-",
            "-",
            f"< {d['target_ms']} ms",
            _met(d["slowest_report_ms"] < d["target_ms"]),
        )
    ]


def rows_match_latency(d: dict[str, Any]) -> list[Row]:
    sizes = d["sizes"]
    first = sizes[0]
    return [
        (
            f"matcher latency, {s['articles']:,} articles",
            f"p50 {s['median_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms",
            f"p99 {first['p99_ms']:.1f} ms at {first['articles']:,}",
            _ratio(s["p99_ms"], first["p99_ms"]),
            "",
            "",
        )
        for s in sizes
    ]


def rows_match_quality(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for corpus, r in d["results"].items():
        m, b = r["matcher"], r["bm25"]
        rows.append(
            (
                f"matcher top-1, {corpus}",
                f"{m['top1']:.3f}",
                f"BM25 {b['top1']:.3f}",
                _ratio(m["top1"], b["top1"]),
                "",
                "",
            )
        )
    return rows


def rows_scale_out(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    base = d["runs"][0]
    for r in d["runs"]:
        lease = r.get("lease")
        extra = ""
        if lease:
            moves = ", ".join(f"{k.split(':')[0]} {v} s" for k, v in lease["takeover_seconds"].items())
            extra = f"; leases moved ({moves})" if lease["moved"] else "; a lease did NOT move"
        rows.append(
            (
                f"{r['processes']} process(es), mixed channels: handled end to end{extra}",
                f"{r['handled_per_second']}/s (intake {r['intake_per_second']}/s)",
                f"1 process: {base['handled_per_second']}/s",
                f"{r['handled_ratio_to_1']:.2f}",
                "no duplicates",
                _met(r["no_duplicates"]),
            )
        )
    return rows


def summary(steps: list[dict[str, Any]], total: float) -> str:
    channel = load("channel_intake")
    raw = channel["raw_insert_per_second"] if channel else None
    builders: dict[str, Any] = {
        "channel_intake": rows_channel_intake,
        "intake": rows_intake,
        "wechat_ack": rows_wechat_ack,
        "telegram_send": rows_telegram_send,
        "email_intake": lambda d: rows_email_intake(d, raw),
        "match_quality": rows_match_quality,
        "match_latency": rows_match_latency,
        "history": rows_history,
        "reports": rows_reports,
        "memory": rows_memory,
        "scale_out": rows_scale_out,
    }
    out = [
        "# Benchmark summary",
        "",
        f"`make bench` on {_machine()}: {total:.0f} s in all. Every figure is printed beside the baseline "
        "measured in the same run (alternating rounds, medians, where the benchmark has rounds). "
        "Details per benchmark in `bench/results/<name>.json`, output in `bench/results/logs/`.",
        "",
        "| benchmark | run | seconds |",
        "| --- | --- | --- |",
    ]
    out += [f"| {s['name']} | {s['status']} | {s['seconds']} |" for s in steps]
    out += [
        "",
        "| benchmark | figure | value | baseline (same run) | ratio | target | |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    ran = {s["name"]: s["status"] for s in steps}
    for name, build in builders.items():
        data = load(name)
        if data is None or name not in ran or ran[name] != "ok":
            continue
        try:
            rows = build(data)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            out.append(f"| {name} | (results in an unexpected shape: {exc!r}) | | | | | |")
            continue
        out += [f"| {name} | " + " | ".join(row) + " |" for row in rows]
    scale = load("scale_out")
    if scale and ran.get("scale_out") == "ok" and "table" in scale:
        out += ["", "## Scale-out", "", scale["table"]]
    return "\n".join(out) + "\n"


def _machine() -> str:
    return f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=870.0, help="seconds for the whole run")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names to run")
    args = parser.parse_args()
    plan = [s for s in PLAN if args.only is None or s.name in args.only]
    started = time.monotonic()
    steps = []
    for step in plan:
        if not (REPO / step.args[0]).exists():
            steps.append({"name": step.name, "status": "missing", "seconds": 0})
            continue
        left = args.budget - (time.monotonic() - started)
        if left < 20:
            steps.append({"name": step.name, "status": "skipped: out of time", "seconds": 0})
            continue
        steps.append(run_step(step, min(step.limit, left)))
    total = time.monotonic() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = summary(steps, total)
    (RESULTS / "SUMMARY.md").write_text(text, encoding="utf-8")
    (RESULTS / "run_all.json").write_text(
        json.dumps({"steps": steps, "seconds": round(total, 1)}, indent=2) + "\n"
    )
    print("\n" + text)
    print(f"written {(RESULTS / 'SUMMARY.md').relative_to(REPO)} ({total:.0f} s)")


if __name__ == "__main__":
    main()
