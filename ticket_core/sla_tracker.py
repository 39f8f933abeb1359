"""Keeps tickets' SLA clocks in step with their events, and the sweep that fires warnings and breaches.

Exactly once per warning or breach, with any number of processes: each is a `ticket_events` record
with a deterministic `event_id` (unique index), and its notifications key on that id in the outbox,
so a second sweeper, or a retry after a crash, adds nothing. The sweep reads only tickets whose
`sla.next_check` is due (indexed), so its cost follows the work, not the history.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ticket_core import sla as clocks
from ticket_core.events import EventDispatcher, PublicReplyAdded, StatusChanged, TicketCreated
from ticket_core.model import Actor, Ticket
from ticket_core.ops_events import SlaBreached, SlaWarning, StillOnIt
from ticket_core.repository import Db, TicketRepository, object_id
from ticket_core.sla import SlaPolicy, pick_policy

log = logging.getLogger(__name__)
SWEEP_BATCH = 200


def _now() -> datetime:
    return datetime.now(UTC)


class SlaTracker:
    def __init__(
        self,
        db: Db,
        tickets: TicketRepository,
        events: EventDispatcher,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._db = db
        self._tickets = tickets
        self._events = events
        self.clock = clock

    def subscribe(self, events: EventDispatcher) -> None:
        events.register(TicketCreated, self.on_created)
        events.register(StatusChanged, self.on_status_changed)
        events.register(PublicReplyAdded, self.on_public_reply)

    async def policies(self) -> list[SlaPolicy]:
        return [SlaPolicy.from_doc(d) async for d in self._db.sla_policies.find({})]

    async def on_created(self, event: TicketCreated) -> None:
        ticket = await self._tickets.get(event.ticket_id)
        if ticket.sla:
            return  # a retried handler
        policies = await self.policies()
        if not policies:
            return
        customer = await self._db.customers.find_one({"_id": object_id(ticket.requester)}, {"tier": 1})
        policy = pick_policy(
            policies,
            priority=ticket.priority,
            category=ticket.category,
            tier=(customer or {}).get("tier"),
        )
        if policy is None:
            return
        # The clocks start when the ticket was created, not when this handler happens to run.
        await self._save(ticket, clocks.start(policy, ticket.priority, ticket.created_at))

    async def on_status_changed(self, event: StatusChanged) -> None:
        ticket = await self._tickets.get(event.ticket_id)
        if ticket.sla.get("clocks"):
            await self._save(ticket, clocks.on_status(ticket.sla, event.old, event.new, event.at))

    async def on_public_reply(self, event: PublicReplyAdded) -> None:
        if event.actor.kind != "agent":
            return
        ticket = await self._tickets.get(event.ticket_id)
        clock = ticket.sla.get("clocks", {}).get("first_response")
        if clock is not None and clock.get("done_at") is None:
            await self._save(ticket, clocks.on_first_response(ticket.sla, event.at))

    async def _save(self, ticket: Ticket, sla: dict[str, Any]) -> None:
        await self._db.tickets.update_one({"_id": object_id(ticket.id)}, {"$set": {"sla": sla}})
        # A clock stopped late is a breach even when no sweep saw it running late.
        for metric, clock in sla.get("clocks", {}).items():
            if clock.get("breached") and not ticket.sla.get("clocks", {}).get(metric, {}).get("breached"):
                await self._fire(ticket, metric, "breach", clock)

    async def sweep(self) -> int:
        """Fire what is due; returns how many actions were taken (by this process or another)."""
        now = self.clock()
        cursor = self._db.tickets.find({"sla.next_check": {"$lte": now}}).limit(SWEEP_BATCH)
        fired = 0
        async for doc in cursor:
            ticket = Ticket.from_doc(doc)
            sla = clocks._copy(ticket.sla)
            actions = clocks.due_actions(sla, now)
            for metric, kind in actions:
                if kind == "message":
                    sla["still_on_it"]["sent"] = True
                else:
                    sla["clocks"][metric]["warned" if kind == "warning" else "breached"] = True
            sla["next_check"] = clocks.next_check(sla)
            # Guarded on the value read: a handler that changed the clocks meanwhile wins, and the next
            # sweep looks again (the events below are deduplicated by id either way).
            await self._db.tickets.update_one(
                {"_id": doc["_id"], "sla.next_check": ticket.sla.get("next_check")}, {"$set": {"sla": sla}}
            )
            for metric, kind in actions:
                await self._fire(ticket, metric, kind, sla["clocks"].get(metric, {}))
                fired += 1
        return fired

    async def _fire(self, ticket: Ticket, metric: str, kind: str, clock: dict[str, Any]) -> None:
        now = self.clock()
        actor = Actor.system("sla")
        due = clock.get("due") or clock.get("done_at")
        due_text = due.isoformat() if isinstance(due, datetime) else ""
        names = {"warning": "sla_warning", "breach": "sla_breached", "message": "sla_still_on_it"}
        event_id = f"{ticket.id}:{names[kind]}:{metric}"
        await self._tickets.append_event(
            {
                "event_id": event_id,
                "ticket_id": ticket.id,
                "number": ticket.number,
                "type": names[kind],
                "actor": dataclasses.asdict(actor),
                "at": now,
                "data": {"metric": metric, "due": due_text, "policy": ticket.sla.get("policy")},
            }
        )
        # Published even when the record existed (a retry after a crash): consumers key on event_id.
        if kind == "warning":
            await self._events.publish(
                SlaWarning(event_id, ticket.id, ticket.number, now, actor, metric, due_text)
            )
        elif kind == "breach":
            await self._events.publish(
                SlaBreached(event_id, ticket.id, ticket.number, now, actor, metric, due_text)
            )
        else:
            await self._events.publish(StillOnIt(event_id, ticket.id, ticket.number, now, actor))
