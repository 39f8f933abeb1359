"""A burst of 300 notifications to 50 Telegram chats through the outbox, against the fake Bot API with
the platform's flood limits enforced (30 msg/s overall, 1 msg/s per chat) and a few injected 429s.

Prints the achieved rate against the 30/s limit, the highest per-chat rate, the 429s seen and whether
each was honoured, and whether anything was lost; writes bench/results/telegram_send.json.

    .venv/bin/python bench/telegram_send.py [--messages 300] [--chats 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from itertools import pairwise
from typing import Any

from _common import RESULTS, machine
from aiohttp import web

from channels.settings import TelegramBot
from gateway.app import create_app
from gateway.appkeys import DATABASE, OUTBOX
from gateway.config import OutboxSettings, Settings, StorageSettings
from tests.fakes.telegram_api import FakeTelegramApi
from ticket_core.messages import OutboundMessage
from ticket_core.secret import Secret

INJECTED_429 = 5


async def run(messages: int, chats: int) -> dict[str, Any]:
    ids = [8_000_000 + i for i in range(chats)]
    async with FakeTelegramApi(enforce_limits=True) as tg:
        for chat in ids[:INJECTED_429]:
            tg.rate_limit_next(chat, count=1, retry_after=1)
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(
                storage=StorageSettings(path=folder),
                outbox=OutboxSettings(
                    retry_base_seconds=0.05, retry_max_seconds=1.0, poll_interval_seconds=0.2
                ),
                telegram_bots=(
                    TelegramBot(name="bench", token=Secret(tg.token), base_url=tg.base_url, mode="webhook"),
                ),
                seed_demo=False,
            )
            app = create_app(settings)
            runner = web.AppRunner(app)  # the app's whole lifecycle; nothing needs to be served
            await runner.setup()
            try:
                outbox, db = app[OUTBOX], app[DATABASE].db
                started = time.monotonic()
                for n in range(messages):  # a broadcast: chats interleaved, as a status change to many
                    chat = ids[n % chats]
                    await outbox.enqueue(
                        OutboundMessage("telegram", "bench", str(chat), f"notice {n} for {chat}"),
                        idempotency_key=f"bench-{n}",
                    )
                enqueued = time.monotonic() - started
                while await db.outbox.count_documents({"state": {"$in": ["pending", "sending"]}}):
                    await asyncio.sleep(0.2)
                finished = time.monotonic() - started
                states = {s: await db.outbox.count_documents({"state": s}) for s in ("sent", "dead")}
            finally:
                await runner.cleanup()
        return _figures(tg, ids, messages, enqueued, finished, states)


def _figures(
    tg: FakeTelegramApi,
    ids: list[int],
    messages: int,
    enqueued: float,
    finished: float,
    states: dict[str, int],
) -> dict[str, Any]:
    times = sorted(tg.send_times())
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    busiest_second = max(sum(1 for t in times if start <= t < start + 1.0) for start in times) if times else 0
    min_gap = min(
        (b - a for chat in ids for a, b in pairwise(tg.send_times(chat))),
        default=float("inf"),
    )
    limited = [r for r in tg.requests if r.status == 429]
    honoured = 0
    for r in limited:
        retry_after = r.response["parameters"]["retry_after"]
        later = [t for t in tg.send_times(r.chat_id) if t > r.at]
        honoured += bool(later and later[0] - r.at >= retry_after - tg.limit_tolerance)
    delivered = [m["text"] for m in tg.sent_messages()]
    return {
        "benchmark": "telegram_send",
        "messages": messages,
        "chats": len(ids),
        "enqueue_seconds": round(enqueued, 2),
        "total_seconds": round(finished, 2),
        "achieved_rate_per_second": round((len(times) - 1) / span, 2) if span else None,
        "limit_per_second": 30,
        "busiest_second": busiest_second,
        "max_per_chat_rate_per_second": round(1 / min_gap, 3) if min_gap != float("inf") else None,
        "min_gap_same_chat_seconds": round(min_gap, 3),
        "http_429_seen": len(limited),
        "http_429_injected": INJECTED_429,
        "http_429_honoured": honoured,
        "outbox_sent": states["sent"],
        "outbox_dead": states["dead"],
        "delivered": len(delivered),
        "delivered_unique": len(set(delivered)),
        "lost": messages - len(set(delivered)),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--chats", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(run(args.messages, args.chats))
    print(f"{result['messages']} notifications to {result['chats']} chats in {result['total_seconds']} s")
    print(
        f"  achieved rate: {result['achieved_rate_per_second']} msg/s (limit {result['limit_per_second']}/s;"
        f" busiest second {result['busiest_second']})"
    )
    print(
        f"  max per-chat rate: {result['max_per_chat_rate_per_second']} msg/s"
        f" (closest two sends to one chat: {result['min_gap_same_chat_seconds']} s)"
    )
    print(
        f"  429s: {result['http_429_seen']} seen ({result['http_429_injected']} injected),"
        f" {result['http_429_honoured']} honoured"
    )
    print(
        f"  delivered {result['delivered_unique']}/{result['messages']} (lost {result['lost']},"
        f" dead {result['outbox_dead']})"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "telegram_send.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
