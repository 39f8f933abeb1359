"""Keeps the report rollups (`report_rollups`) in step with tickets, so a report reads only rollups.

Each ticket's contributions are remembered in `ticket_facts`; when one of its events happens the facts
are recomputed from all its events and only the difference is applied to the rollups (`$inc`). A
version guard on the facts document serialises concurrent refreshes of one ticket across processes.
Deflections (recorded by the dialog in `deflections`) are folded in by a watermark on their time.
`rebuild()` recomputes everything from `tickets` and `ticket_events` (after changing the reporting
calendar, or to repair a rollup left behind by a crash between the two writes).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ticket_core.business_hours import BusinessCalendar
from ticket_core.facts import (
    Contributions,
    add_into,
    compute,
    delta,
    describe,
    expand,
    rollup_doc,
    rollup_id,
    stored,
)
from ticket_core.repository import Db

log = logging.getLogger(__name__)
CALENDAR_ID = "business_hours"  # the `settings` document of the reporting calendar
DEFLECTION_LAG = timedelta(seconds=2)  # deflections written this recently may still be in flight
REFRESH_ATTEMPTS = 5


def _now() -> datetime:
    return datetime.now(UTC)


async def reporting_calendar(db: Db) -> BusinessCalendar:
    return BusinessCalendar.from_doc(await db.settings.find_one({"_id": CALENDAR_ID}, {"_id": 0}))


class Rollups:
    def __init__(self, db: Db, *, clock: Callable[[], datetime] = _now) -> None:
        self._db = db
        self._clock = clock
        self._calendar: BusinessCalendar | None = None

    async def calendar(self) -> BusinessCalendar:
        if self._calendar is None:
            self._calendar = await reporting_calendar(self._db)
        return self._calendar

    def forget_calendar(self) -> None:
        self._calendar = None

    async def refresh(self, ticket_id: str) -> None:
        calendar = await self.calendar()
        for _ in range(REFRESH_ATTEMPTS):
            ticket = await self._db.tickets.find_one({"_id": _oid(ticket_id)})
            if ticket is None:
                return
            events = [e async for e in self._db.ticket_events.find({"ticket_id": ticket_id})]
            facts_now = stored(compute(ticket, events, calendar))
            facts = await self._db.ticket_facts.find_one({"_id": ticket_id})
            version = int(facts["version"]) if facts else 0
            change = delta(expand(facts), expand(facts_now))
            if not change:
                return
            if facts is None:
                try:
                    await self._db.ticket_facts.insert_one({"_id": ticket_id, "version": 1, **facts_now})
                except DuplicateKeyError:
                    continue  # another process recorded it first: start over from its version
            else:
                won = await self._db.ticket_facts.update_one(
                    {"_id": ticket_id, "version": version}, {"$set": {**facts_now, "version": version + 1}}
                )
                if won.modified_count != 1:
                    continue
            await self._apply(change)
            return
        log.warning("ticket %s: facts kept changing under %d refreshes", ticket_id, REFRESH_ATTEMPTS)

    async def _apply(self, change: Contributions) -> None:
        ops = [
            UpdateOne({"_id": key}, {"$inc": values, "$setOnInsert": describe(key)}, upsert=True)
            for key, values in change.items()
        ]
        if not ops:
            return
        try:
            await self._db.report_rollups.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # Two processes upserting one new rollup at once: the loser's upsert collides; the
            # document exists now, so the same update applies cleanly on a second try.
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            await self._db.report_rollups.bulk_write([ops[e["index"]] for e in errors], ordered=False)

    async def catch_up_deflections(self) -> int:
        """Fold deflections recorded since the watermark into the rollups; the guarded watermark move
        makes sure only one process counts a batch."""
        state = await self._db.report_state.find_one({"_id": "deflections"})
        since = state["upto"] if state else datetime(1970, 1, 1, tzinfo=UTC)
        upto = self._clock() - DEFLECTION_LAG
        if upto <= since:
            return 0
        calendar = await self.calendar()
        counts: Contributions = {}
        n = 0
        async for doc in self._db.deflections.find(
            {"at": {"$gt": since, "$lte": upto}}, {"channel": 1, "at": 1}
        ):
            day = calendar.local_day(doc["at"]).isoformat()
            add_into(counts, {rollup_id("all", "all", day): {"deflections": 1}})
            add_into(
                counts, {rollup_id("channel", str(doc.get("channel") or "(none)"), day): {"deflections": 1}}
            )
            n += 1
        if state is None:
            try:
                await self._db.report_state.insert_one({"_id": "deflections", "upto": upto})
            except DuplicateKeyError:
                return 0
        else:
            moved = await self._db.report_state.update_one(
                {"_id": "deflections", "upto": since}, {"$set": {"upto": upto}}
            )
            if moved.modified_count != 1:
                return 0
        await self._apply(counts)
        return n

    async def rebuild(self, batch: int = 100) -> int:
        """Recompute all facts and rollups from tickets and events (and deflections). Meant for a quiet
        moment: ticket changes that land while it runs may need another rebuild."""
        calendar = await self.calendar()
        total: Contributions = {}
        facts_docs: list[dict[str, Any]] = []
        count = 0
        await self._db.ticket_facts.delete_many({})
        cursor = self._db.tickets.find({}).sort("_id", 1)
        chunk: list[dict[str, Any]] = []

        async def flush() -> None:
            ids = [str(t["_id"]) for t in chunk]
            by_ticket: dict[str, list[dict[str, Any]]] = defaultdict(list)
            async for event in self._db.ticket_events.find({"ticket_id": {"$in": ids}}):
                by_ticket[event["ticket_id"]].append(event)
            for ticket in chunk:
                facts = stored(compute(ticket, by_ticket[str(ticket["_id"])], calendar))
                add_into(total, expand(facts))
                facts_docs.append({"_id": str(ticket["_id"]), "version": 1, **facts})
            if facts_docs:
                # Replace, not insert: a refresh in another process may have written one meanwhile.
                await self._db.ticket_facts.bulk_write(
                    [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in facts_docs], ordered=False
                )
            facts_docs.clear()
            chunk.clear()

        async for ticket in cursor:
            chunk.append(ticket)
            count += 1
            if len(chunk) >= batch:
                await flush()
        if chunk:
            await flush()
        await self._db.report_rollups.delete_many({})
        await self._db.report_state.delete_one({"_id": "deflections"})
        await write_rollups(self._db, total)
        await self.catch_up_deflections()
        return count

    async def read(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [doc async for doc in self._db.report_rollups.find(dict(query))]


async def write_rollups(db: Db, total: Contributions, batch: int = 1000) -> None:
    docs = [rollup_doc(key, values) for key, values in total.items()]
    for i in range(0, len(docs), batch):
        await db.report_rollups.insert_many(docs[i : i + batch], ordered=False)


def _oid(value: str) -> Any:
    from bson import ObjectId
    from bson.errors import InvalidId

    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return value
