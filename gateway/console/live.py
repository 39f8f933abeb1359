"""Live updates for open console pages: ticket events fan out to server-sent-event subscribers.

In-process only: an event is seen by consoles connected to the process that handled it. With several
gateway processes behind a load balancer, pin console connections (sticky sessions) or accept that a
page refreshes on its next action; the ticket itself is always read from MongoDB.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ticket_core.events import CustomerCommentAdded, StatusChanged, TicketCreated, TicketEvent

log = logging.getLogger(__name__)
QUEUE_SIZE = 100


class LiveFeed:
    def __init__(self, team_of: Callable[[str], Awaitable[str | None]]) -> None:
        """`team_of(ticket_id)`: the ticket's team, so a page only hears of tickets its agent may see."""
        self._team_of = team_of
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    async def close(self, *_: object) -> None:
        """At shutdown: end every open stream so the server does not wait for browsers to leave."""
        for queue in list(self._subscribers):
            while queue.full():
                queue.get_nowait()
            queue.put_nowait({"type": "closing"})

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def on_event(self, event: TicketEvent) -> None:
        if not self._subscribers:
            return
        kind = {
            CustomerCommentAdded: "customer_comment",
            TicketCreated: "created",
            StatusChanged: "status_changed",
        }.get(type(event), type(event).__name__)
        item = {
            "type": kind,
            "ticket": event.ticket_number,
            "team": await self._team_of(event.ticket_id),
            "at": event.at.isoformat(),
            "actor": event.actor.name,
        }
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                # A stalled browser tab must not hold memory or slow the others: it misses events.
                log.debug("live subscriber is full; dropping an event")
