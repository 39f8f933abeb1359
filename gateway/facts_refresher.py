"""Refreshes report facts after the request that changed a ticket, not inside it.

Ticket events only mark the ticket; a background task recomputes its facts and rollups, so intake
and agents' actions do not wait for reporting. A report first lets this process's queue settle, so
it includes everything this process has done. Work lost to a crash (marked, not yet refreshed) is
caught up by the next refresh of that ticket or by `POST /api/v1/reports/rebuild`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pymongo.errors import PyMongoError

from gateway.lifecycle import Component, TaskGroup
from ticket_core.errors import OmnigateError
from ticket_core.rollups import Rollups

log = logging.getLogger(__name__)
DRAIN_SECONDS = 10.0


class FactsRefresher(Component):
    def __init__(self, rollups: Rollups) -> None:
        self._rollups = rollups
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: set[str] = set()
        self._tasks = TaskGroup("facts-refresh")
        self._running = False

    async def initialize(self) -> None:
        self._running = True
        self._tasks.spawn(self._loop(), name="facts-refresh")

    async def shutdown(self) -> None:
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.settle(), DRAIN_SECONDS)
        self._running = False
        await self._tasks.cancel_all()

    def mark(self, ticket_id: str) -> None:
        if ticket_id not in self._pending:
            self._pending.add(ticket_id)
            self._queue.put_nowait(ticket_id)

    async def settle(self) -> None:
        """Wait until every ticket marked so far has been refreshed."""
        if self._running:
            await self._queue.join()

    async def _loop(self) -> None:
        while True:
            ticket_id = await self._queue.get()
            # Unmarked first: an event arriving during the refresh queues the ticket again.
            self._pending.discard(ticket_id)
            try:
                await self._rollups.refresh(ticket_id)
            except (PyMongoError, OmnigateError) as exc:
                log.warning("report facts of ticket %s not refreshed: %s", ticket_id, exc)
            except Exception:
                log.exception("report facts of ticket %s not refreshed", ticket_id)
            finally:
                self._queue.task_done()
