"""How per-message cost and query latency change with history: 1k vs 100k stored tickets.

Two databases on one database server are seeded with `insert_many` in the stored shapes (tickets
built by `Ticket.to_doc`, one customer per ten tickets, the ticket-number counter; with `--with-inbox`
also one finished `inbox` record per ticket): 1,000 and 100,000 tickets. Two gateway processes
(dispatch on, the web form waiting for its ticket) run side by side, one per database; the rounds
alternate between them:
  - per-message cost: web-form submissions that each create a ticket (customer lookup, number,
    ticket, events, notification), wall time per ticket at a fixed concurrency;
  - query latency: ticket by number, tickets of one requester, the open-ticket list (first page),
    the backlog and summary reports.
Target: per-message cost at 100k within 20% of the cost at 1k.

    python bench/history.py [--large 100000] [--rounds 3] [--messages 60]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from _common import REPO, machine, write_results
from bson import ObjectId
from pymongo import AsyncMongoClient

from gateway.database import ensure_indexes
from tests.dbserver import database_server
from tests.e2e.gateway_process import GatewayConfig, GatewayProcess, send, webform_request
from ticket_core.messages import CustomerIdentity, InboundMessage
from ticket_core.model import Ticket

TARGET = 0.20
TOKEN = "og_history-bench-token-0000000000000000000000"
STATUSES = ["closed"] * 14 + ["solved"] * 3 + ["open", "pending", "new"]


def _seed_docs(n: int, start: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rnd = random.Random(start)
    now = datetime.now(UTC)
    tickets, inbox, customers = [], [], []
    for i in range(start, start + n):
        if i % 10 == 0:
            email = f"hist{i // 10}@example.com"
            identity = CustomerIdentity("webform", "support", email, display_name="历史客户", email=email)
            customers.append(
                {
                    "_id": ObjectId(),
                    "name": "历史客户",
                    "email": email,
                    "phone": None,
                    "locale": "zh-CN",
                    "tags": [],
                    "identities": [
                        {
                            "key": identity.key,
                            "channel": "webform",
                            "account": "support",
                            "external_id": email,
                            "display_name": "历史客户",
                        }
                    ],
                    "created_at": now,
                }
            )
        requester = str(customers[-1]["_id"])
        created = now - timedelta(minutes=rnd.randint(1, 60 * 24 * 365))
        status = rnd.choice(STATUSES)
        key = f"hist-{i}"
        ticket = Ticket(
            id=str(ObjectId()),
            number=f"T-{i + 1:06d}",
            subject=f"历史工单 {i}: 打印机卡纸",
            status=status,
            priority=rnd.choice(["low", "normal", "normal", "high", "urgent"]),
            channel="webform",
            account="support",
            requester=requester,
            created_at=created,
            updated_at=created + timedelta(hours=rnd.randint(0, 72)),
            category=rnd.choice(["printer", "billing", "network", None]),
            description="每次打印第二页都会卡纸，已经换过纸了。" * 2,
            locale="zh-CN",
            conversation_key=f"webform:support:{key}",
            reply_to=customers[-1]["email"],
            source_key=f"webform:support:{key}",
            sla={"first_response_due": created + timedelta(hours=8)},
            solved_at=created + timedelta(days=1) if status in ("solved", "closed") else None,
            closed_at=created + timedelta(days=4) if status == "closed" else None,
        )
        doc = ticket.to_doc()
        doc["_id"] = ObjectId(ticket.id)
        tickets.append(doc)
        msg = InboundMessage(
            channel="webform",
            account="support",
            external_id=key,
            dedup_key=f"webform:support:{key}",
            identity=CustomerIdentity("webform", "support", customers[-1]["email"]),
            conversation_key=f"webform:support:{key}",
            kind="form",
            text=ticket.description,
            subject=ticket.subject,
            received_at=created,
        )
        inbox.append(
            {
                "_id": ObjectId(),
                "dedup_key": msg.dedup_key,
                "conversation_key": msg.conversation_key,
                "channel": "webform",
                "account": "support",
                "message": msg.to_doc(),
                "state": "done",
                "owner": "history-seed",
                "attempts": 1,
                "received_at": created,
                "done_at": created,
                "result": {"ticket_number": ticket.number},
            }
        )
    return tickets, inbox, customers


async def seed(uri: str, database: str, count: int, *, with_inbox: bool) -> float:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    db = client[database]
    await ensure_indexes(db)
    started = time.perf_counter()
    chunk = 5000
    queue: asyncio.Queue[tuple[str, list[dict[str, Any]]]] = asyncio.Queue(maxsize=8)

    async def producer() -> None:
        for start in range(0, count, chunk):
            tickets, inbox, customers = _seed_docs(min(chunk, count - start), start)
            parts = [("tickets", tickets), ("customers", customers)] + (
                [("inbox", inbox)] if with_inbox else []
            )
            for name, docs in parts:
                for i in range(0, len(docs), 500):
                    await queue.put((name, docs[i : i + 500]))
        for _ in range(3):
            await queue.put(("", []))

    async def writer() -> None:
        while True:
            name, docs = await queue.get()
            if not name:
                return
            await db[name].insert_many(docs, ordered=False)

    await asyncio.gather(producer(), writer(), writer(), writer())
    await db.counters.update_one({"_id": "ticket_number"}, {"$set": {"seq": count}}, upsert=True)
    await db.tokens.insert_one(
        {
            "token_hash": hashlib.sha256(TOKEN.encode()).hexdigest(),
            "name": "history-bench",
            "role": "admin",
            "scopes": ["*"],
            "agent": None,
            "created_by": None,
            "created_at": datetime.now(UTC),
            "last_used_at": None,
            "revoked": False,
        }
    )
    elapsed = time.perf_counter() - started
    assert await db.tickets.estimated_document_count() == count
    await client.close()
    return elapsed


async def per_message(gw: GatewayProcess, round_: int, count: int, concurrency: int) -> dict[str, Any]:
    requests = [
        webform_request(f"h{gw.name}-{round_}-{i}", email=f"hist{i}@example.com") for i in range(count)
    ]
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    pending = iter(requests)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def client() -> None:
            for request in pending:
                t0 = time.perf_counter()
                status = await send(http, gw.url, request)
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "messages": count,
        "ms_per_message": elapsed / count * 1000,
        "tickets_per_second": count / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "statuses": {str(k): v for k, v in statuses.items()},
    }


async def queries(gw: GatewayProcess, seeded: int, repeat: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    rnd = random.Random(seeded)
    paths = {
        "ticket_by_number": lambda: f"/api/v1/tickets/T-{rnd.randint(1, seeded):06d}",
        "tickets_of_requester": lambda: "/api/v1/tickets?requester=" + gw.name,  # replaced below
        "open_tickets_page": lambda: "/api/v1/tickets?status=open&limit=50",
        "report_backlog": lambda: "/api/v1/reports/backlog",
        "report_summary": lambda: "/api/v1/reports/summary",
    }
    out: dict[str, float] = {}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.get(f"{gw.url}/api/v1/tickets/T-{seeded // 2:06d}") as res:
            requester = (await res.json()).get("requester", "")
        paths["tickets_of_requester"] = lambda: f"/api/v1/tickets?requester={requester}&limit=50"
        for name, path in paths.items():
            samples = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                async with http.get(gw.url + path()) as res:
                    await res.read()
                    if res.status != 200:
                        raise RuntimeError(f"{name}: {res.status} {await res.text()}")
                samples.append(time.perf_counter() - t0)
            out[name] = statistics.median(samples) * 1000
    return out


async def run(
    small: int, large: int, rounds: int, messages: int, concurrency: int, with_inbox: bool
) -> dict[str, Any]:
    sizes = {"small": small, "large": large}
    with tempfile.TemporaryDirectory(prefix="omnigate-history-") as folder:
        tmp = Path(folder)
        with database_server(tmp / "db") as uri:
            seed_seconds = {}
            for label, n in sizes.items():
                seed_seconds[label] = await seed(uri, f"hist_{label}", n, with_inbox=with_inbox)
                print(f"seeded {n} tickets in {seed_seconds[label]:.1f} s", flush=True)
            gateways = {
                label: GatewayProcess(
                    tmp,
                    GatewayConfig(uri=uri, database=f"hist_{label}", dispatch=True, form_wait_seconds=10.0),
                    name=label,
                )
                for label in sizes
            }
            cost: dict[str, list[dict[str, Any]]] = {label: [] for label in sizes}
            query: dict[str, list[dict[str, float]]] = {label: [] for label in sizes}
            try:
                for gw in gateways.values():
                    gw.start()
                for gw in gateways.values():
                    await gw.wait_healthy()
                for label, gw in gateways.items():  # warm-up
                    await per_message(gw, 99, 10, concurrency)
                    await queries(gw, sizes[label], 2)
                for round_ in range(rounds):
                    order = list(sizes) if round_ % 2 == 0 else list(reversed(sizes))
                    for label in order:
                        cost[label].append(await per_message(gateways[label], round_, messages, concurrency))
                        query[label].append(await queries(gateways[label], sizes[label], 10))
                    print(
                        f"round {round_ + 1}: "
                        + "  ".join(f"{k} {v[-1]['ms_per_message']:.1f} ms/message" for k, v in cost.items()),
                        flush=True,
                    )
            finally:
                for gw in gateways.values():
                    gw.stop()
    return summarise(sizes, seed_seconds, cost, query, rounds, messages, concurrency)


def summarise(
    sizes: dict[str, int],
    seed_seconds: dict[str, float],
    cost: dict[str, list[dict[str, Any]]],
    query: dict[str, list[dict[str, float]]],
    rounds: int,
    messages: int,
    concurrency: int,
) -> dict[str, Any]:
    ratios = [
        b["ms_per_message"] / a["ms_per_message"] for a, b in zip(cost["small"], cost["large"], strict=True)
    ]
    ratio = statistics.median(ratios)
    per_size = {}
    for label, n in sizes.items():
        per_size[str(n)] = {
            "ms_per_message": round(statistics.median(c["ms_per_message"] for c in cost[label]), 2),
            "tickets_per_second": round(statistics.median(c["tickets_per_second"] for c in cost[label]), 1),
            "submit_p50_ms": round(statistics.median(c["p50_ms"] for c in cost[label]), 1),
            "queries_ms": {
                name: round(statistics.median(q[name] for q in query[label]), 2) for name in query[label][0]
            },
            "seed_seconds": round(seed_seconds[label], 1),
        }
    small, large = str(sizes["small"]), str(sizes["large"])
    query_ratios = {
        name: round(per_size[large]["queries_ms"][name] / per_size[small]["queries_ms"][name], 2)
        for name in per_size[small]["queries_ms"]
    }
    return {
        "benchmark": "history",
        "rounds": rounds,
        "messages_per_round": messages,
        "concurrency": concurrency,
        "sizes": per_size,
        "per_message_ratio": round(ratio, 3),
        "per_message_ratios": [round(r, 3) for r in ratios],
        "query_ratios": query_ratios,
        "target": f"per-message cost at {large} within {TARGET:.0%} of {small}",
        "target_met": abs(ratio - 1) <= TARGET,
        "samples": {"cost": cost, "queries": query},
        "machine": machine(),
    }


def report(r: dict[str, Any]) -> None:
    (small, a), (large, b) = r["sizes"].items()
    print(f"\nmedians of {r['rounds']} alternating rounds ({r['messages_per_round']} tickets each):")
    print(f"{'':28s}{small + ' tickets':>16s}{large + ' tickets':>16s}   ratio")
    print(
        f"{'per message (ms, e2e)':28s}{a['ms_per_message']:16.1f}{b['ms_per_message']:16.1f}"
        f"   {r['per_message_ratio']:.2f}  target within {TARGET:.0%}: "
        f"{'met' if r['target_met'] else 'NOT met'}"
    )
    for name, q in r["query_ratios"].items():
        print(f"{name + ' (ms)':28s}{a['queries_ms'][name]:16.1f}{b['queries_ms'][name]:16.1f}   {q:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--with-inbox",
        action="store_true",
        help="also seed one finished inbox record per ticket (doubles the seeding time, ~3 min for 100k)",
    )
    args = parser.parse_args()
    r = asyncio.run(
        run(args.small, args.large, args.rounds, args.messages, args.concurrency, args.with_inbox)
    )
    report(r)
    path = write_results("history", r)
    print(f"written {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
