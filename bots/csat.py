"""Customer satisfaction: rating buttons once a ticket is solved, and the rating kept on the ticket.

The request goes to customers on channels with buttons (Telegram); a tap comes back as the action
`csat` (value 1-5, `fields["ticket"]`). The rating is stored on the ticket as `csat: {score, comment,
at}` and recorded as a `csat` ticket event whose id derives from the inbox record, so a retried
handler records it once. Only the ticket's requester may rate it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bots.relay import Enqueue
from ticket_core.errors import NotFound
from ticket_core.events import EventDispatcher, StatusChanged
from ticket_core.messages import InboundMessage, OutboundMessage
from ticket_core.model import Actor, Ticket
from ticket_core.repository import CustomerRepository, Db, TicketRepository, object_id

log = logging.getLogger(__name__)

BUTTON_CHANNELS = frozenset({"telegram"})
LABELS = ("1 😞", "2 🙁", "3 😐", "4 🙂", "5 😍")

# (template event, channel, locale, context) -> text; wired to the template renderer.
RenderText = Callable[[str, str, str, dict[str, Any]], Awaitable[str]]
OnRated = Callable[[Ticket, int, str], Awaitable[None]]


class Csat:
    def __init__(
        self,
        *,
        db: Db,
        outbox: Enqueue,
        tickets: TicketRepository,
        customers: CustomerRepository,
        render: RenderText,
        on_rated: OnRated | None = None,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._tickets = tickets
        self._customers = customers
        self._render = render
        self._on_rated = on_rated

    def subscribe(self, events: EventDispatcher) -> None:
        events.register(StatusChanged, self.on_status_changed)

    async def on_status_changed(self, event: StatusChanged) -> None:
        if event.new != "solved":
            return
        ticket = await self._tickets.get(event.ticket_id)
        if ticket.channel not in BUTTON_CHANNELS or not ticket.reply_to:
            return
        text = await self._render(
            "csat_request", ticket.channel, ticket.locale, {"ticket": ticket.public_view()}
        )
        buttons = tuple((label, f"csat:{n}:{ticket.number}") for n, label in enumerate(LABELS, 1))
        await self._send(ticket, text, buttons, key=f"csat-ask:{event.event_id}", event="csat_request")

    async def record(self, msg: InboundMessage, record_id: str) -> dict[str, Any]:
        """Handle the `csat` action; never raises for a bad tap (a retry would not fix it)."""
        try:
            score = int(str(msg.fields.get("value", "")))
        except ValueError:
            score = 0
        if not 1 <= score <= 5:
            return {"csat": "invalid", "reason": "score must be 1-5"}
        ticket = await self._find(msg)
        if ticket is None:
            return {"csat": "invalid", "reason": "no such ticket"}
        customer = await self._customers.resolve(msg.identity, locale=msg.locale)
        if customer.id != ticket.requester:
            return {"csat": "refused", "reason": "only the requester rates a ticket"}
        now = datetime.now(UTC)
        actor = Actor("customer", customer.id, customer.name or msg.identity.display_name or "")
        fresh = await self._tickets.append_event(
            {
                "event_id": f"csat:{msg.dedup_key}",
                "ticket_id": ticket.id,
                "number": ticket.number,
                "type": "csat",
                "actor": dataclasses.asdict(actor),
                "at": now,
                "data": {"score": score},
            }
        )
        if fresh:
            # The latest rating counts; a comment may be added later by the dialog or the console.
            await self._db.tickets.update_one(
                {"_id": object_id(ticket.id)},
                {"$set": {"csat": {"score": score, "comment": None, "at": now}}},
            )
        text = await self._render(
            "csat_thanks", msg.channel, ticket.locale, {"ticket": ticket.public_view(), "score": score}
        )
        await self._send(ticket, text, (), key=f"csat-thanks:{msg.dedup_key}", event="csat_thanks")
        if self._on_rated is not None:
            await self._on_rated(ticket, score, f"csat:{msg.dedup_key}")
        return {"csat": "recorded", "score": score, "ticket_number": ticket.number}

    async def _find(self, msg: InboundMessage) -> Ticket | None:
        number = str(msg.fields.get("ticket") or "")
        try:
            if number:
                return await self._tickets.get_by_number(number)
        except NotFound:
            return None
        return await self._tickets.latest_for_conversation(msg.conversation_key)

    async def _send(
        self, ticket: Ticket, text: str, buttons: tuple[tuple[str, str], ...], *, key: str, event: str
    ) -> None:
        message = OutboundMessage(
            channel=ticket.channel,
            account=ticket.account,
            recipient=ticket.reply_to,
            text=text,
            locale=ticket.locale,
            buttons=buttons,
            ticket_number=ticket.number,
            meta={"event": event, "ticket_id": ticket.id, "conversation_key": ticket.conversation_key},
        )
        await self._outbox.enqueue(message, idempotency_key=key, ticket_id=ticket.id, event=event)
