"""Web-form intake throughput and latency, side by side with the database's raw batch insert rate.

Both are measured in one run against one embedded database (SecantusDB): first the raw
`insert_many` rate for documents shaped like inbox records, then the gateway (a separate process, as
in production) taking JSON form submissions over HTTP at a fixed concurrency. "Accepted" means the
gateway answered 2xx, which it does only after the inbox record is durable. Dispatch (ticket creation)
is switched off for the intake figure so the two numbers measure the same work; a second, shorter run
with dispatch on reports how many tickets per second the whole path makes.

    python bench/intake.py [--submissions 3000] [--concurrency 64] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _common import REPO, machine, write_results
from bson import ObjectId
from pymongo import AsyncMongoClient

from gateway.database import EmbeddedMongo, ensure_indexes, free_port
from ticket_core.messages import CustomerIdentity, InboundMessage


def _submission(i: int) -> dict[str, str]:
    return {
        "subject": f"打印机卡纸 #{i}",
        "description": "每次打印第二页都会卡纸，已经换过纸了。" * 3,
        "email": f"customer{i % 500}@example.com",
        "name": "王小明",
        "category": "printer",
    }


def _inbox_doc(i: int) -> dict[str, Any]:
    """The record the gateway stores for one submission, built by the same model code."""
    values = _submission(i)
    key = f"raw-{i}-{ObjectId()}"
    msg = InboundMessage(
        channel="webform",
        account="support",
        external_id=key,
        dedup_key=f"webform:support:{key}",
        identity=CustomerIdentity("webform", "support", values["email"], email=values["email"]),
        conversation_key=f"webform:support:{key}",
        kind="form",
        text=values["description"],
        subject=values["subject"],
        fields=values,
        locale="zh-CN",
    )
    return {
        "_id": ObjectId(),
        "dedup_key": msg.dedup_key,
        "conversation_key": msg.conversation_key,
        "channel": "webform",
        "account": "support",
        "message": msg.to_doc(),
        "state": "processing",
        "owner": "bench",
        "lease_until": msg.received_at,
        "attempts": 0,
        "received_at": msg.received_at,
    }


async def raw_insert_rate(uri: str, count: int, batch: int, writers: int) -> dict[str, float]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    db = client.bench_raw
    await ensure_indexes(db)
    docs = [_inbox_doc(i) for i in range(count)]
    chunks = [docs[i : i + batch] for i in range(0, count, batch)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)

    async def writer() -> None:
        while not queue.empty():
            await db.inbox.insert_many(queue.get_nowait(), ordered=False)

    before = await db.inbox.count_documents({})
    started = time.perf_counter()
    await asyncio.gather(*[writer() for _ in range(writers)])
    elapsed = time.perf_counter() - started
    stored = await db.inbox.count_documents({}) - before
    # The collection is kept between rounds: the gateway's inbox grows round after round too, and
    # inserting into a fresh collection every time would flatter the baseline.
    await client.close()
    assert stored == count
    return {
        "docs": count,
        "seconds": elapsed,
        "docs_per_second": count / elapsed,
        "batch": batch,
        "writers": writers,
    }


def start_gateway(
    tmp: Path, uri: str, port: int, *, dispatch: bool, database: str
) -> subprocess.Popen[bytes]:
    config = tmp / f"bench-{port}.toml"
    config.write_text(
        f"[server]\nport = {port}\nform_wait_seconds = {'5.0' if dispatch else '0'}\n"
        f'[storage]\npath = "{tmp / "var"}"\n[mongodb]\nuri = "{uri}"\ndatabase = "{database}"\n'
        f"[bus]\ndispatch = {'true' if dispatch else 'false'}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "OMNIGATE_LOG_LEVEL": "WARNING", "OMNIGATE_DEMO__SEED": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / f"gateway-{port}.log", "wb"),
        env=env,
    )


async def wait_healthy(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as res:
                    if res.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("gateway did not start")


async def http_intake(port: int, count: int, concurrency: int, *, offset: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = iter(range(offset, offset + count))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def client() -> None:
            for i in next_index:
                started = time.perf_counter()
                async with http.post(
                    f"http://127.0.0.1:{port}/forms/support",
                    json=_submission(i),
                    headers={"Idempotency-Key": f"bench-{offset}-{i}"},
                ) as res:
                    await res.read()
                    statuses[res.status] = statuses.get(res.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        # warm-up outside the measurement (connections, JIT-free but caches and the form definition)
        async with http.post(f"http://127.0.0.1:{port}/forms/support", json=_submission(-1)) as res:
            await res.read()
        started = time.perf_counter()
        await asyncio.gather(*[client() for _ in range(concurrency)])
        elapsed = time.perf_counter() - started
    accepted = sum(n for status, n in statuses.items() if 200 <= status < 300)
    ordered = sorted(latencies)
    return {
        "submissions": count,
        "concurrency": concurrency,
        "seconds": elapsed,
        "accepted_per_second": accepted / elapsed,
        "statuses": statuses,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
    }


async def tickets_made(uri: str, database: str) -> int:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        return await client[database].tickets.count_documents({})
    finally:
        await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--submissions", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/intake measurements")
    parser.add_argument("--quick", action="store_true", help="a short run (1000 submissions)")
    args = parser.parse_args()
    count = 1000 if args.quick else args.submissions
    with tempfile.TemporaryDirectory(prefix="omnigate-bench-") as folder:
        tmp = Path(folder)
        async with EmbeddedMongo(tmp / "db", log_path=tmp / "secantus.log") as mongo:
            port = free_port()
            gateway = start_gateway(tmp, mongo.uri, port, dispatch=False, database="bench_intake")
            raws: list[dict[str, Any]] = []
            intakes: list[dict[str, Any]] = []
            try:
                await wait_healthy(port)
                # An unmeasured round first: both sides reach their steady state (connection pools,
                # caches, the database's first collection and index pages) before anything counts.
                await raw_insert_rate(mongo.uri, min(count, 500), batch=100, writers=4)
                await http_intake(port, min(count, 500), args.concurrency, offset=10**7)
                # Alternate the two measurements so a noisy neighbour hurts both alike; report medians.
                for round_ in range(args.rounds):
                    raws.append(await raw_insert_rate(mongo.uri, count, batch=100, writers=4))
                    intakes.append(await http_intake(port, count, args.concurrency, offset=round_ * count))
            finally:
                gateway.send_signal(signal.SIGTERM)
                gateway.wait(60)
            port = free_port()
            gateway = start_gateway(tmp, mongo.uri, port, dispatch=True, database="bench_e2e")
            try:
                await wait_healthy(port)
                e2e_count = max(200, count // 5)
                started = time.perf_counter()
                e2e = await http_intake(port, e2e_count, min(args.concurrency, 32), offset=10**6)
                while await tickets_made(mongo.uri, "bench_e2e") < e2e_count + 1:
                    await asyncio.sleep(0.1)
                e2e["tickets_per_second"] = (e2e_count + 1) / (time.perf_counter() - started)
            finally:
                gateway.send_signal(signal.SIGTERM)
                gateway.wait(60)
    ratios = [i["accepted_per_second"] / r["docs_per_second"] for r, i in zip(raws, intakes, strict=True)]
    raw = min(
        raws, key=lambda r: abs(r["docs_per_second"] - statistics.median(x["docs_per_second"] for x in raws))
    )
    intake = sorted(intakes, key=lambda i: i["accepted_per_second"])[len(intakes) // 2]
    print("round  raw docs/s  intake/s  ratio")
    for n, (r, i, q) in enumerate(zip(raws, intakes, ratios, strict=True), 1):
        print(f"{n:5d}  {r['docs_per_second']:10.0f}  {i['accepted_per_second']:8.0f}  {q:5.2f}")
    ratio = statistics.median(ratios)
    print(
        f"raw insert_many (batches of {raw['batch']}, {raw['writers']} writers): "
        f"{raw['docs_per_second']:8.0f} docs/s"
    )
    print(
        f"web-form intake, {intake['concurrency']} concurrent clients:        "
        f"{intake['accepted_per_second']:8.0f} accepted and durable/s   "
        f"p50 {intake['p50_ms']:.1f} ms  p99 {intake['p99_ms']:.1f} ms  statuses {intake['statuses']}"
    )
    print(
        f"intake / raw insert rate, median of {len(ratios)} rounds: {ratio:.2f}  "
        f"(target >= 0.60: {'met' if ratio >= 0.6 else 'NOT met'})"
    )
    print(
        f"end to end with dispatch (tickets created): {e2e['tickets_per_second']:.0f} tickets/s, "
        f"submission p50 {e2e['p50_ms']:.1f} ms p99 {e2e['p99_ms']:.1f} ms"
    )
    path = write_results(
        "intake",
        {
            "raw_insert": raw,
            "intake": intake,
            "ratio": ratio,
            "ratios": ratios,
            "rounds": {"raw": raws, "intake": intakes},
            "target_ratio": 0.6,
            "end_to_end": e2e,
            "machine": machine(),
        },
    )
    print(f"written {path.relative_to(REPO)}")


if __name__ == "__main__":
    asyncio.run(main())
