"""HTTP intake per channel against the database's raw batch insert rate and a bare aiohttp handler,
all measured in one run on one database server, alternating over rounds (medians reported).

- raw: `insert_many` (batches of 100, 4 writers) of inbox-shaped documents: the storage baseline;
- ceiling: bench/http_ceiling.py, a bare aiohttp handler in its own process: the HTTP baseline;
- web form, WeChat callback (safe mode: signature, nonce, AES) and Telegram webhook (secret header)
  against one gateway process (`python -m gateway serve`, dispatch off so every figure is intake:
  answered 2xx only once the inbox record is durable).
Then WeChat callbacks in an open loop at half the measured maximum rate, for the p99 target.

Targets: web form and Telegram webhook >= 60% of the raw rate; WeChat p99 < 100 ms at half max.

    python bench/channel_intake.py [--requests 2000] [--rounds 5] [--concurrency 128]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from _common import REPO, machine, write_results
from _http_load import client, serialise
from intake import raw_insert_rate

from gateway.database import free_port
from tests.dbserver import database_server
from tests.e2e.gateway_process import (
    GatewayConfig,
    GatewayProcess,
    Request,
    telegram_request,
    webform_request,
    wechat_request,
    wechat_signer,
)

TARGET_RATIO = 0.60
TARGET_WECHAT_P99_MS = 100.0


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def closed_loop(base: str, requests: list[Request], concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pending = iter([serialise(r, base) for r in requests])
    async with client(base) as http:

        async def worker() -> None:
            for data in pending:
                started = time.perf_counter()
                status = await http.send(data)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    accepted = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "requests": len(requests),
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "per_second": accepted / elapsed,
        "statuses": {str(k): v for k, v in statuses.items()},
        "p50_ms": round(pct(latencies, 0.5), 2),
        "p99_ms": round(pct(latencies, 0.99), 2),
    }


async def open_loop(base: str, requests: list[Request], rate: float) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    wire = [serialise(r, base) for r in requests]
    async with client(base) as http:

        async def one(data: bytes) -> None:
            started = time.perf_counter()
            status = await http.send(data)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

        # The load generator's own full collections (its thousands of prepared requests) would stall
        # sending and show up as the gateway's latency.
        gc.collect()
        gc.freeze()
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for i, data in enumerate(wire):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(data)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    return {
        "target_rate_per_s": round(rate, 1),
        "achieved_rate_per_s": round(len(requests) / elapsed, 1),
        "requests": len(requests),
        "statuses": {str(k): v for k, v in statuses.items()},
        "p50_ms": round(pct(latencies, 0.5), 2),
        "p90_ms": round(pct(latencies, 0.9), 2),
        "p99_ms": round(pct(latencies, 0.99), 2),
        "max_ms": round(max(latencies) * 1000, 2),
    }


def builders(round_: int, count: int) -> dict[str, Callable[[], list[Request]]]:
    """Fresh requests per round (WeChat timestamps and nonces must be current and unique)."""
    base = round_ * 1_000_000 + 1

    def ceiling() -> list[Request]:
        return webform_request_list(base + 500_000, count)

    def webform() -> list[Request]:
        return webform_request_list(base, count)

    def wechat() -> list[Request]:
        signer = wechat_signer()
        return [
            wechat_request(signer, f"o_bench_{i % 500}", "打印机卡纸了", 10**12 + base + i)
            for i in range(count)
        ]

    def telegram() -> list[Request]:
        return [telegram_request(base + i, 10_000 + i % 500, "My printer jams") for i in range(count)]

    return {"ceiling": ceiling, "webform": webform, "wechat": wechat, "telegram": telegram}


def webform_request_list(base: int, count: int) -> list[Request]:
    return [webform_request(f"bench-{base + i}", email=f"c{i % 500}@example.com") for i in range(count)]


async def run(count: int, rounds: int, concurrency: int, half_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="omnigate-channels-") as folder:
        tmp = Path(folder)
        with database_server(tmp / "db") as uri:
            gw = GatewayProcess(tmp, GatewayConfig(uri=uri, database="bench_channels", dispatch=False))
            ceiling_port = free_port()
            ceiling = subprocess.Popen(
                [sys.executable, str(REPO / "bench" / "http_ceiling.py"), "--serve", str(ceiling_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            gw.start()
            samples: dict[str, list[dict[str, Any]]] = {
                k: [] for k in ("raw", "ceiling", "webform", "wechat", "telegram")
            }
            try:
                await gw.wait_healthy()
                ceiling_base = f"http://127.0.0.1:{ceiling_port}"
                for _ in range(100):
                    if await _up(ceiling_base):
                        break
                    await asyncio.sleep(0.1)
                # warm-up at full concurrency: connections, caches, the form definition, and the
                # database's first pages, so round 1 measures the same steady state as the others
                await raw_insert_rate(uri, 500, batch=100, writers=4)
                for name, build in builders(99, 300).items():
                    await closed_loop(ceiling_base if name == "ceiling" else gw.url, build(), concurrency)
                for round_ in range(rounds):
                    raw = await raw_insert_rate(uri, count, batch=100, writers=4)
                    raw["per_second"] = raw["docs_per_second"]
                    samples["raw"].append(raw)
                    for name, build in builders(round_, count).items():
                        requests = build()
                        base = ceiling_base if name == "ceiling" else gw.url
                        samples[name].append(await closed_loop(base, requests, concurrency))
                    line = "  ".join(f"{k} {v[-1]['per_second']:7.0f}/s" for k, v in samples.items())
                    print(f"round {round_ + 1}: {line}", flush=True)
                wechat_max = statistics.median(s["per_second"] for s in samples["wechat"])
                half = wechat_max / 2
                signer = wechat_signer()
                requests = [
                    wechat_request(signer, f"o_half_{i % 500}", "打印机卡纸了", 2 * 10**12 + i)
                    for i in range(max(50, int(half * half_seconds)))
                ]
                wechat_half = await open_loop(gw.url, requests, half)
            finally:
                gw.stop()
                ceiling.terminate()
                ceiling.wait(10)
    return summarise(samples, wechat_half, count, rounds, concurrency)


async def _up(base: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as res:
            return res.status == 200
    except aiohttp.ClientError:
        return False


def summarise(
    samples: dict[str, list[dict[str, Any]]],
    wechat_half: dict[str, Any],
    count: int,
    rounds: int,
    concurrency: int,
) -> dict[str, Any]:
    raw_rates = [s["per_second"] for s in samples["raw"]]
    ceil_rates = [s["per_second"] for s in samples["ceiling"]]
    channels: dict[str, Any] = {}
    for name in ("webform", "wechat", "telegram"):
        rates = [s["per_second"] for s in samples[name]]
        vs_raw = [r / b for r, b in zip(rates, raw_rates, strict=True)]
        vs_ceiling = [r / b for r, b in zip(rates, ceil_rates, strict=True)]
        channels[name] = {
            "per_second": round(statistics.median(rates), 1),
            "p50_ms": statistics.median(s["p50_ms"] for s in samples[name]),
            "p99_ms": statistics.median(s["p99_ms"] for s in samples[name]),
            "ratio_to_raw": round(statistics.median(vs_raw), 3),
            "ratios_to_raw": [round(x, 3) for x in vs_raw],
            "ratio_to_ceiling": round(statistics.median(vs_ceiling), 3),
            "statuses": [s["statuses"] for s in samples[name]],
        }
    for name in ("webform", "telegram"):
        channels[name]["target_ratio_to_raw"] = TARGET_RATIO
        channels[name]["target_met"] = channels[name]["ratio_to_raw"] >= TARGET_RATIO
    wechat_half["target_p99_ms"] = TARGET_WECHAT_P99_MS
    wechat_half["target_met"] = wechat_half["p99_ms"] < TARGET_WECHAT_P99_MS
    wechat_half["max_rate_per_s"] = channels["wechat"]["per_second"]
    return {
        "benchmark": "channel_intake",
        "requests_per_round": count,
        "rounds": rounds,
        "concurrency": concurrency,
        "raw_insert_per_second": round(statistics.median(raw_rates), 1),
        "raw_insert_rounds": [round(x, 1) for x in raw_rates],
        "http_ceiling_per_second": round(statistics.median(ceil_rates), 1),
        "http_ceiling_ratio_to_raw": round(
            statistics.median(c / r for c, r in zip(ceil_rates, raw_rates, strict=True)), 3
        ),
        "channels": channels,
        "wechat_half_rate": wechat_half,
        "samples": samples,
        "machine": machine(),
    }


def report(r: dict[str, Any]) -> None:
    print(f"\nmedians of {r['rounds']} alternating rounds, {r['requests_per_round']} requests each:")
    print(f"  raw insert_many (baseline)      {r['raw_insert_per_second']:8.0f} docs/s")
    print(
        f"  bare aiohttp handler (ceiling)  {r['http_ceiling_per_second']:8.0f} req/s "
        f"({r['http_ceiling_ratio_to_raw']:.2f} x raw)"
    )
    for name, c in r["channels"].items():
        target = ""
        if "target_met" in c:
            target = (
                f"  target >= {c['target_ratio_to_raw']:.2f} x raw: {'met' if c['target_met'] else 'NOT met'}"
            )
        print(
            f"  {name:9s} intake               {c['per_second']:8.0f} /s  {c['ratio_to_raw']:.2f} x raw  "
            f"{c['ratio_to_ceiling']:.2f} x ceiling  p50 {c['p50_ms']:.0f} ms "
            f"p99 {c['p99_ms']:.0f} ms{target}"
        )
    h = r["wechat_half_rate"]
    print(
        f"  wechat open loop at half max ({h['target_rate_per_s']}/s of {h['max_rate_per_s']}/s): "
        f"p50 {h['p50_ms']} ms p99 {h['p99_ms']} ms max {h['max_ms']} ms  "
        f"target p99 < {h['target_p99_ms']:.0f} ms: {'met' if h['target_met'] else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--half-seconds", type=float, default=30.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.requests, args.rounds, args.concurrency, args.half_seconds))
    report(result)
    path = write_results("channel_intake", result)
    print(f"written {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
