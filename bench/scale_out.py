"""Scale-out: 1, 2 and 3 gateway processes against one database, load on every channel.

For each process count a fresh database on one shared SecantusDB server; every gateway has the
web form, a WeChat account (safe mode, against the fake WeChat API), a Telegram webhook bot and a
Telegram polling bot (against two fake Bot APIs, all in this process), with the dialog on. The same
mixed load (web-form submissions, signed WeChat callbacks, Telegram webhook updates; conversations of
three messages each) is spread round-robin over the processes, as a load balancer would. Figures:
intake rate (acknowledged/s) and end-to-end rate (records handled/s until all are done); both as a
ratio to the single process in the same run. Then the checks: no message handled twice (see
`duplicate_report`) and, with 2 and 3 processes, the Telegram polling leader lease moves when its
holder is SIGKILLed (time until another process holds it; the lease is `poll_lease_seconds`).

    python bench/scale_out.py [--per-channel 90] [--processes 1 2 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _common import REPO, machine, write_results
from pymongo import AsyncMongoClient

from tests.dbserver import database_server
from tests.e2e.gateway_process import (
    GatewayConfig,
    GatewayProcess,
    Request,
    duplicate_report,
    lease_holder,
    owner_pid,
    send,
    telegram_request,
    wait_all_handled,
    webform_request,
    wechat_request,
    wechat_signer,
)
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.wechat_api import FakeWeChatApi

LEASE_SECONDS = 6.0
QUESTIONS = ["My router has no internet", "打印机卡纸了怎么办", "How do I reset my password?"]


def mixed_load(tag: int, per_channel: int, wx: FakeWeChatApi) -> list[list[Request]]:
    """Conversations (lists of requests sent in order); three messages per chat or openid."""
    signer = wechat_signer()
    conversations: list[list[Request]] = []
    for c in range(per_channel // 3):
        conversations.append([webform_request(f"scale{tag}-{c}-{m}") for m in range(3)])
        openid = f"o_scale{tag}_{c}"
        wx.user_wrote(openid)
        conversations.append(
            [wechat_request(signer, openid, QUESTIONS[m], tag * 10**9 + c * 10 + m) for m in range(3)]
        )
        chat = tag * 100_000 + c
        conversations.append(
            [telegram_request(tag * 10**7 + c * 10 + m, chat, QUESTIONS[m]) for m in range(3)]
        )
    return conversations


async def drive(gateways: list[GatewayProcess], conversations: list[list[Request]]) -> dict[str, Any]:
    """Each conversation's messages in order, one after the other; conversations concurrently, each
    message to the next gateway in turn (round-robin)."""
    statuses: dict[int, int] = {}
    turn = 0
    acked: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        sem = asyncio.Semaphore(48)

        async def conversation(requests: list[Request]) -> None:
            nonlocal turn
            async with sem:
                for request in requests:
                    gw = gateways[turn % len(gateways)]
                    turn += 1
                    for _ in range(5):  # a platform retries what was not acknowledged
                        status = await send(http, gw.url, request)
                        statuses[status] = statuses.get(status, 0) + 1
                        if 200 <= status < 300:
                            acked.append(request.dedup_key)
                            break
                        await asyncio.sleep(0.5)

        started = time.perf_counter()
        await asyncio.gather(*(conversation(c) for c in conversations))
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "acked": acked, "statuses": {str(k): v for k, v in statuses.items()}}


async def one_config(
    n: int,
    tmp: Path,
    uri: str,
    tg: FakeTelegramApi,
    poll: FakeTelegramApi,
    wx: FakeWeChatApi,
    per_channel: int,
) -> dict[str, Any]:
    database = f"scale_{n}"
    config = GatewayConfig(
        uri=uri,
        database=database,
        dispatch=True,
        telegram_api=tg.base_url,
        telegram_token=tg.token,
        wechat_api=wx.base_url,
        poll_api=poll.base_url,
        poll_token=poll.token,
        poll_lease_seconds=LEASE_SECONDS,
        lease_seconds=20.0,
        sweep_interval_seconds=2.0,
    )
    gateways = [GatewayProcess(tmp / f"n{n}", config, name=f"gw{i}") for i in range(n)]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    db = client[database]
    result: dict[str, Any] = {"processes": n}
    try:
        for gw in gateways:
            gw.start()
        for gw in gateways:
            await gw.wait_healthy()
        warm = mixed_load(900 + n, 3, wx)
        await drive(gateways, warm)
        await wait_all_handled(db, 9, 60)
        before = await db.inbox.count_documents({})
        conversations = mixed_load(n, per_channel, wx)
        total = sum(len(c) for c in conversations)
        started = time.perf_counter()
        load = await drive(gateways, conversations)
        finished = await wait_all_handled(db, before + total, 300)
        handled_seconds = time.perf_counter() - started
        result.update(
            {
                "messages": total,
                "acknowledged": len(load["acked"]),
                "statuses": load["statuses"],
                "intake_per_second": round(len(load["acked"]) / load["seconds"], 1),
                "handled": finished - before,
                "handled_seconds": round(handled_seconds, 1),
                "handled_per_second": round((finished - before) / handled_seconds, 1),
            }
        )
        problems = await duplicate_report(db)
        result["duplicates"] = problems
        missing = [k for k in load["acked"] if await db.inbox.count_documents({"dedup_key": k}) != 1]
        result["acknowledged_but_not_stored_once"] = missing[:20]
        if n >= 2:
            result["lease"] = await lease_move(db, gateways, poll)
    finally:
        for gw in gateways:
            gw.stop()
        await client.close()
    return result


async def lease_move(db: Any, gateways: list[GatewayProcess], poll: FakeTelegramApi) -> dict[str, Any]:
    name = "telegram-poll:poller"
    holder = None
    for _ in range(100):
        holder = owner_pid(await lease_holder(db, name))
        if holder:
            break
        await asyncio.sleep(0.2)
    leader = next((g for g in gateways if g.pid == holder), None)
    if leader is None:
        return {"moved": False, "error": f"no live gateway holds {name} (holder pid {holder})"}
    leader.kill()
    killed = time.perf_counter()
    new = None
    while time.perf_counter() - killed < LEASE_SECONDS * 4:
        new = owner_pid(await lease_holder(db, name))
        if new and new != holder:
            break
        await asyncio.sleep(0.1)
    takeover = time.perf_counter() - killed
    # the new leader polls: an update pushed now is stored
    update = poll.push_message(777_001, "still polling after the takeover?")
    stored = False
    for _ in range(100):
        if await db.inbox.count_documents({"dedup_key": f"telegram:poller:{update['update_id']}"}):
            stored = True
            break
        await asyncio.sleep(0.2)
    return {
        "lease": name,
        "killed_pid": holder,
        "new_pid": new,
        "moved": bool(new and new != holder),
        "takeover_seconds": round(takeover, 2),
        "lease_seconds": LEASE_SECONDS,
        "within_lease_time": takeover <= LEASE_SECONDS + 1.0,
        "update_after_takeover_stored": stored,
    }


async def run(counts: list[int], per_channel: int) -> dict[str, Any]:
    results = []
    with tempfile.TemporaryDirectory(prefix="omnigate-scale-") as folder:
        tmp = Path(folder)
        async with (
            FakeTelegramApi(token="111111:SCALE-HOOK") as tg,
            FakeTelegramApi(token="222222:SCALE-POLL") as poll,
            FakeWeChatApi() as wx,
        ):
            with database_server(tmp / "db") as uri:
                for n in counts:
                    r = await one_config(n, tmp, uri, tg, poll, wx, per_channel)
                    results.append(r)
                    print(
                        f"{n} process(es): intake {r['intake_per_second']}/s, handled "
                        f"{r['handled_per_second']}/s ({r['handled']}/{r['messages']}), "
                        f"duplicates: {'none' if _clean(r) else r['duplicates']}",
                        flush=True,
                    )
                    if "lease" in r:
                        print(f"  lease: {r['lease']}", flush=True)
    base = results[0]
    for r in results:
        r["intake_ratio_to_1"] = round(r["intake_per_second"] / base["intake_per_second"], 2)
        r["handled_ratio_to_1"] = round(r["handled_per_second"] / base["handled_per_second"], 2)
        r["no_duplicates"] = _clean(r)
    return {"benchmark": "scale_out", "per_channel": per_channel, "runs": results, "machine": machine()}


def _clean(r: dict[str, Any]) -> bool:
    return not any(r["duplicates"].values()) and not r["acknowledged_but_not_stored_once"]


def table(result: dict[str, Any]) -> str:
    lines = [
        "| processes | messages | intake (ack/s) | vs 1 | handled end to end (/s) | vs 1 "
        "| duplicates | lease moved |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["runs"]:
        lease = r.get("lease")
        moved = (
            "-"
            if lease is None
            else (
                f"yes, {lease['takeover_seconds']} s (lease {lease['lease_seconds']:g} s)"
                if lease["moved"]
                else "NO"
            )
        )
        lines.append(
            f"| {r['processes']} | {r['messages']} | {r['intake_per_second']} | {r['intake_ratio_to_1']} | "
            f"{r['handled_per_second']} | {r['handled_ratio_to_1']} | "
            f"{'none' if r['no_duplicates'] else 'FOUND'} | {moved} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-channel", type=int, default=90)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    result = asyncio.run(run(args.processes, args.per_channel))
    result["table"] = table(result)
    print()
    print(result["table"])
    path = write_results("scale_out", result)
    print(f"written {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
