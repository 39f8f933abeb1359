"""Memory of one gateway process with 10,000 active conversations.

A gateway (`python -m gateway serve`, dialog engine on, demo knowledge base seeded) takes Telegram
webhook updates from 10,000 distinct private chats; the dialog answers each (article suggestions,
sent through the outbox to the fake Bot API in this process). The process's RSS (its own; the
database server is a separate process) is read after start-up and a warm-up of 100 conversations
(the baseline), when all 10,000 are accepted and queued for the dialog (every conversation active in
the process at once: the most it ever holds in memory, since conversation state lives in the database),
and at the end: when all are handled or after `--handle-seconds` (the dialog on the embedded database,
sharing two cores with intake, handles about 11 messages/s, so a full pass takes about 15 minutes,
beyond `make bench`'s budget). The peak over the run is checked against the target: < 400 MB.

    python bench/memory.py [--conversations 10000] [--concurrency 32]
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
    send,
    telegram_request,
)
from tests.fakes.telegram_api import FakeTelegramApi

TARGET_MB = 400.0
QUESTIONS = [
    "My router is connected to Wi-Fi but there is no internet",
    "How do I reset my password?",
    "打印机卡纸了怎么办",
    "I was charged twice for my order",
    "The app crashes when I open settings",
]


async def drive(base: str, requests: list[Request], concurrency: int) -> dict[str, int]:
    statuses: dict[int, int] = {}
    pending = iter(requests)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def client() -> None:
            for request in pending:
                status = await send(http, base, request)
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return {str(k): v for k, v in statuses.items()}


async def wait_handled(db: Any, total: int, limit: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if await db.inbox.count_documents({"state": "done"}) >= total:
            break
        await asyncio.sleep(1.0)
    return time.monotonic() - started


async def run(conversations: int, concurrency: int, handle_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="omnigate-memory-") as folder:
        tmp = Path(folder)
        async with FakeTelegramApi(token="123456:MEMORY-BENCH") as tg:
            with database_server(tmp / "db") as uri:
                config = GatewayConfig(
                    uri=uri,
                    database="bench_memory",
                    dispatch=True,
                    seed_demo=True,
                    telegram_api=tg.base_url,
                    telegram_token=tg.token,
                )
                gw = GatewayProcess(tmp, config)
                client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
                db = client.bench_memory
                gw.start()
                try:
                    await gw.wait_healthy()
                    warm = [
                        telegram_request(i, 5_000_000 + i, QUESTIONS[i % len(QUESTIONS)]) for i in range(100)
                    ]
                    await drive(gw.url, warm, concurrency)
                    await wait_handled(db, 100, 120)
                    await asyncio.sleep(2.0)
                    baseline = gw.rss_bytes()
                    print(f"baseline RSS after start-up and 100 conversations: {baseline / 2**20:.0f} MB")
                    requests = [
                        telegram_request(1_000 + i, 6_000_000 + i, QUESTIONS[i % len(QUESTIONS)])
                        for i in range(conversations)
                    ]
                    started = time.monotonic()
                    peak = baseline
                    load = asyncio.ensure_future(drive(gw.url, requests, concurrency))
                    while not load.done():
                        peak = max(peak, gw.rss_bytes())
                        await asyncio.sleep(0.5)
                    statuses = await load
                    intake_seconds = time.monotonic() - started
                    queued_rss = gw.rss_bytes()  # every conversation accepted and queued for the dialog
                    print(
                        f"{conversations} conversations accepted in {intake_seconds:.1f} s; "
                        f"RSS with all of them queued: {queued_rss / 2**20:.0f} MB",
                        flush=True,
                    )
                    total = 100 + conversations
                    while True:
                        peak = max(peak, gw.rss_bytes())
                        done = await db.inbox.count_documents({"state": "done"})
                        if done >= total or time.monotonic() - started > handle_seconds:
                            break
                        await asyncio.sleep(1.0)
                    handled_seconds = time.monotonic() - started
                    after = gw.rss_bytes()
                    peak = max(peak, after)
                    active = len(await db.conversations.distinct("key"))
                    outbox = await db.outbox.count_documents({})
                finally:
                    gw.stop()
                    await client.close()
    return {
        "benchmark": "memory",
        "conversations_driven": conversations,
        "conversations_stored": active,
        "handled": done - 100,
        "all_handled": done >= 100 + conversations,
        "queued_rss_mb": round(queued_rss / 2**20, 1),
        "webhook_statuses": statuses,
        "intake_seconds": round(intake_seconds, 1),
        "handled_seconds": round(handled_seconds, 1),
        "dialog_messages_per_second": round((done - 100) / handled_seconds, 1),
        "outbox_records": outbox,
        "baseline_rss_mb": round(baseline / 2**20, 1),
        "rss_mb": round(after / 2**20, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "ratio_to_baseline": round(after / baseline, 2),
        "target_mb": TARGET_MB,
        "target_met": peak / 2**20 < TARGET_MB,
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--handle-seconds",
        type=float,
        default=150.0,
        help="how long to let the dialog work through the queue before the final reading (it handles "
        "about 11 messages/s on the embedded database, so 10,000 take ~15 min: use 1200 for all)",
    )
    args = parser.parse_args()
    r = asyncio.run(run(args.conversations, args.concurrency, args.handle_seconds))
    print(
        f"{r['conversations_driven']} conversations ({r['conversations_stored']} stored, {r['handled']} "
        f"messages handled in {r['handled_seconds']} s, "
        f"{r['dialog_messages_per_second']}/s through the dialog)"
    )
    print(
        f"RSS {r['rss_mb']} MB (peak {r['peak_rss_mb']} MB) vs {r['baseline_rss_mb']} MB at start "
        f"({r['ratio_to_baseline']} x baseline); target < {TARGET_MB:.0f} MB: "
        f"{'met' if r['target_met'] else 'NOT met'}"
    )
    path = write_results("memory", r)
    print(f"written {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
