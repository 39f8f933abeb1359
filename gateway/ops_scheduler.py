"""The operations sweep: SLA warnings and breaches, ratings that arrived by any path, deflections.

One process at a time runs it (a leader lease in `leases`); that saves work, while exactly-once rests
on the deterministic event ids and outbox keys underneath, so a lease handed over mid-sweep cannot
double a warning or a breach.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pymongo.errors import PyMongoError

from channels.telegram.lease import LeaderLease
from gateway.database import Db
from gateway.lifecycle import Component, TaskGroup
from ticket_core.errors import OmnigateError
from ticket_core.model import Ticket
from ticket_core.rollups import Rollups
from ticket_core.sla_tracker import SlaTracker

log = logging.getLogger(__name__)
LEASE_NAME = "operations-scheduler"

RatingHandler = Callable[[Ticket], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


class OperationsScheduler(Component):
    def __init__(
        self,
        db: Db,
        tracker: SlaTracker,
        rollups: Rollups,
        on_rating: RatingHandler,
        *,
        interval: float = 5.0,
        lease_seconds: float = 30.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._db = db
        self._tracker = tracker
        self._rollups = rollups
        self._on_rating = on_rating
        self._interval = interval
        self._clock = clock
        self.lease = LeaderLease(db, LEASE_NAME, seconds=lease_seconds, clock=clock)
        self._tasks = TaskGroup("operations")

    async def initialize(self) -> None:
        if self._interval > 0:
            self._tasks.spawn(self._loop(), name="operations-sweep")

    async def shutdown(self) -> None:
        await self._tasks.cancel_all()
        await self.lease.release()

    async def run_once(self) -> int:
        """One sweep if this process holds the lease; returns how many SLA actions fired."""
        if not await self.lease.acquire():
            return 0
        fired = await self._tracker.sweep()
        await self._ratings()
        await self._rollups.catch_up_deflections()
        return fired

    async def _ratings(self) -> None:
        """Ratings stored since the last sweep (Telegram buttons write them directly): facts and
        the low-rating follow-up, both idempotent."""
        state = await self._db.report_state.find_one({"_id": "ratings"})
        if state is None:
            # First run: ratings from before operations were installed are history, not news.
            await self._db.report_state.update_one(
                {"_id": "ratings"}, {"$setOnInsert": {"upto": self._clock()}}, upsert=True
            )
            return
        since = state["upto"]
        upto = since
        async for doc in self._db.tickets.find({"csat.at": {"$gt": since}}).sort("csat.at", 1).limit(500):
            ticket = Ticket.from_doc(doc)
            await self._on_rating(ticket)
            upto = max(upto, doc["csat"]["at"])
        if upto > since:
            await self._db.report_state.update_one({"_id": "ratings"}, {"$set": {"upto": upto}}, upsert=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except (PyMongoError, OmnigateError) as exc:
                log.warning("operations sweep failed: %s", exc)
            await asyncio.sleep(self._interval)
