"""Report latency on 100,000 tickets on the embedded database.

Seeds a history straight into the collections as the code stores them (tickets, `ticket_events`,
deflections; insert_many in batches, indexes built afterwards as on a restored database), computes
the facts and rollups with the same code as `POST /api/v1/reports/rebuild`, then times each report
through the same functions the REST handlers call. Prints the figures and writes
bench/results/reports.json.

    .venv/bin/python bench/reports.py [--tickets 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import REPO, machine, write_results
from pymongo import AsyncMongoClient

sys.path.insert(0, str(REPO))

from bench.report_history import deflections, generate
from gateway.database import INDEXES, EmbeddedMongo
from ticket_core.facts import Contributions, add_into, compute, expand, stored
from ticket_core.reports import backlog, summarize
from ticket_core.rollups import CALENDAR_ID, Rollups, write_rollups

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
CALENDAR = {
    "timezone": "Asia/Shanghai",
    "hours": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-02-17", "2026-02-18", "2026-05-01", "2026-10-01"],
}


async def _insert(collection: Any, docs: list[dict[str, Any]], batch: int = 1000, lanes: int = 6) -> None:
    async def lane(k: int) -> None:
        for i in range(k * batch, len(docs), batch * lanes):
            await collection.insert_many(docs[i : i + batch], ordered=False)

    await asyncio.gather(*(lane(k) for k in range(lanes)))


async def _time(label: str, fn: Any, rounds: int = 5) -> dict[str, Any]:
    samples = []
    result = None
    for _ in range(rounds):
        t = time.perf_counter()
        result = await fn()
        samples.append(time.perf_counter() - t)
    print(f"  {label:<34} best {min(samples) * 1000:7.1f} ms   worst {max(samples) * 1000:7.1f} ms")
    return {
        "best_ms": min(samples) * 1000,
        "worst_ms": max(samples) * 1000,
        "rounds": rounds,
        "result": result,
    }


async def main(n: int) -> None:
    t_all = time.perf_counter()
    spacing = 365 * 24 * 60 / n  # one year of history
    with tempfile.TemporaryDirectory(prefix="omnigate-bench-reports-") as tmp:
        db_server = EmbeddedMongo(Path(tmp) / "db", log_path=Path(tmp) / "secantus.log")
        await db_server.initialize()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(db_server.uri, tz_aware=True)
        db = client["bench"]
        try:
            t = time.perf_counter()
            tickets, events, _truths = generate(n, START, spacing_minutes=spacing)
            deflected = deflections(n // 3, START, spacing_minutes=spacing * 3)
            gen_s = time.perf_counter() - t
            t = time.perf_counter()
            await _insert(db.tickets, tickets)
            await _insert(db.ticket_events, events)
            await _insert(db.deflections, deflected)
            insert_s = time.perf_counter() - t
            docs = len(tickets) + len(events) + len(deflected)
            print(
                f"seeded {len(tickets)} tickets, {len(events)} events, {len(deflected)} deflections "
                f"in {insert_s:.1f} s ({docs / insert_s:.0f} docs/s; generated in {gen_s:.1f} s)"
            )
            # Reports read only the rollups: the secondary indexes of tickets and ticket_events (which a
            # restore would build and the reports never use) are left out to keep the run short.
            t = time.perf_counter()
            await db.report_rollups.create_indexes(INDEXES["report_rollups"])
            await db.settings.insert_one({"_id": CALENDAR_ID, **CALENDAR})
            now = [START + timedelta(days=366)]
            rollups = Rollups(db, clock=lambda: now[0])
            calendar = await rollups.calendar()
            by_ticket: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for event in events:
                by_ticket[event["ticket_id"]].append(event)
            total: Contributions = {}
            facts_docs = []
            for ticket in tickets:
                facts = stored(compute(ticket, by_ticket[str(ticket["_id"])], calendar))
                add_into(total, expand(facts))
                facts_docs.append({"_id": str(ticket["_id"]), "version": 1, **facts})
            compute_s = time.perf_counter() - t
            t = time.perf_counter()
            await _insert(db.ticket_facts, facts_docs)
            await write_rollups(db, total)
            await rollups.catch_up_deflections()
            rebuild_s = time.perf_counter() - t
            rollup_docs = await db.report_rollups.count_documents({})
            print(
                f"facts computed in {compute_s:.1f} s; facts and {rollup_docs} rollup documents"
                f" stored in {rebuild_s:.1f} s"
            )

            year = ("2026-01-01", "2027-01-31")
            month = ("2026-06-01", "2026-06-30")

            def summary(by: str | None, days: tuple[str, str]) -> Any:
                async def run() -> dict[str, Any]:
                    await rollups.catch_up_deflections()
                    dim = "all" if by in (None, "day") else by
                    found = await rollups.read(
                        {"kind": "daily", "dim": dim, "day": {"$gte": days[0], "$lte": days[1]}}
                    )
                    out = summarize(found, by)
                    return {"tickets": out["total"]["tickets"], "groups": len(out["items"])}

                return run

            async def backlog_now() -> dict[str, Any]:
                found = await rollups.read({"kind": "backlog", "dim": "team"})
                out = backlog(found, now[0].date())
                return {"open": out["total"]["open"]}

            print(f"reports over {n} tickets:")
            reports = {
                "summary_year_total": await _time("summary, one year, total", summary(None, year)),
                "summary_year_by_day": await _time("summary, one year, by day", summary("day", year)),
                "summary_year_by_channel": await _time(
                    "summary, one year, by channel", summary("channel", year)
                ),
                "summary_year_by_category": await _time(
                    "summary, one year, by category", summary("category", year)
                ),
                "summary_year_by_team": await _time("summary, one year, by team", summary("team", year)),
                "summary_year_by_agent": await _time("summary, one year, by agent", summary("agent", year)),
                "summary_month_by_agent": await _time(
                    "summary, one month, by agent", summary("agent", month)
                ),
                "backlog_by_team": await _time("backlog by team", backlog_now),
            }
            worst = max(r["worst_ms"] for r in reports.values())
            assert reports["summary_year_total"]["result"]["tickets"] == n
            total_s = time.perf_counter() - t_all
            print(f"slowest report: {worst:.1f} ms (target < 2000 ms); whole benchmark {total_s:.0f} s")
            path = write_results(
                "reports",
                {
                    "tickets": n,
                    "events": len(events),
                    "deflections": len(deflected),
                    "seed_seconds": insert_s,
                    "seed_docs_per_second": docs / insert_s,
                    "facts_compute_seconds": compute_s,
                    "facts_and_rollups_store_seconds": rebuild_s,
                    "rollup_documents": rollup_docs,
                    "reports": reports,
                    "slowest_report_ms": worst,
                    "target_ms": 2000,
                    "total_seconds": total_s,
                    "machine": machine(),
                    "database": "SecantusDB (embedded), pymongo async",
                },
            )
            print(f"wrote {path}")
        finally:
            await client.close()
            await db_server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().tickets))
