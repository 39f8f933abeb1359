"""Ratings from customers: the `csat` action from any channel, a bare "1"-"5" reply (email, WeChat)
to a solved ticket that asked for one, and the link in the solved notice (`/csat/{token}`).

Placed in front of the dialog: a message that is not a rating goes on unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.bus import InboundHandler
from gateway.notifier import Notifier
from gateway.operations import Operations
from ticket_core.csat import parse_reply, validate
from ticket_core.errors import InvalidInput, NotFound
from ticket_core.events import TicketEvent
from ticket_core.messages import InboundMessage
from ticket_core.model import Actor, Ticket
from ticket_core.repository import MongoCustomerRepository, MongoTicketRepository, object_id

log = logging.getLogger(__name__)
BUTTON_CHANNELS = frozenset({"telegram"})  # bots/csat.py asks there with buttons


class CsatIntake:
    def __init__(
        self,
        ops: Operations,
        tickets: MongoTicketRepository,
        customers: MongoCustomerRepository,
        notifier: Notifier,
        inner: InboundHandler,
    ) -> None:
        self._ops = ops
        self._tickets = tickets
        self._customers = customers
        self._notifier = notifier
        self._inner = inner

    async def __call__(self, msg: InboundMessage, record_id: str) -> dict[str, Any] | None:
        rating: tuple[int, str] | None = None
        if msg.kind == "action" and msg.fields.get("action") == "csat":
            try:
                score, _ = validate(msg.fields.get("value"), None)
            except InvalidInput:
                return {"csat": "invalid", "reason": "score must be 1-5"}
            rating = (score, "")
        elif msg.kind == "text" and msg.text:
            rating = parse_reply(msg.text)
        if rating is None:
            return await self._inner(msg, record_id)
        ticket = await self._ticket_for(msg)
        asked = ticket is not None and await self._asked(ticket)
        if ticket is None or ticket.status not in ("solved", "closed") or (msg.kind == "text" and not asked):
            if msg.kind == "action":
                return {"csat": "invalid", "reason": "no solved ticket to rate"}
            return await self._inner(msg, record_id)  # a "2" that is not a rating: the dialog's turn
        if msg.kind == "text" and ticket.csat:
            return await self._inner(msg, record_id)  # rated already: a later digit is a message
        customer = await self._customers.resolve(msg.identity, locale=msg.locale)
        if customer.id != ticket.requester:
            return {"csat": "refused", "reason": "only the requester rates a ticket"}
        score, comment = rating
        actor = Actor("customer", customer.id, customer.name or msg.identity.display_name or "")
        await self._ops.csat.rate(ticket, score, comment or None, actor, event_id=f"csat:{msg.dedup_key}")
        return {"csat": "recorded", "score": score, "ticket_number": ticket.number}

    async def _ticket_for(self, msg: InboundMessage) -> Ticket | None:
        number = str(msg.fields.get("ticket") or msg.meta.get("ticket_number") or "")
        try:
            if number:
                return await self._tickets.get_by_number(number)
        except NotFound:
            return None
        return await self._tickets.latest_for_conversation(msg.conversation_key)

    async def _asked(self, ticket: Ticket) -> bool:
        doc = await self._ops.db.tickets.find_one({"_id": object_id(ticket.id)}, {"csat_asked_at": 1})
        return bool(doc and doc.get("csat_asked_at"))


async def csat_link_hook(ops: Operations, name: str, ticket: Ticket, event: TicketEvent) -> dict[str, Any]:
    """The rating link in the first solved notice of a ticket (channels without buttons)."""
    if name != "status_changed" or getattr(event, "new", None) != "solved":
        return {}
    if ticket.channel in BUTTON_CHANNELS or ticket.csat or ops.tokens is None:
        return {}
    marked = await ops.db.tickets.update_one(
        {"_id": object_id(ticket.id), "csat_asked_at": {"$exists": False}},
        {"$set": {"csat_asked_at": ops.clock()}},
    )
    if marked.modified_count != 1:
        return {}  # asked once already
    return {"csat_url": f"{ops.public_url}/csat/{ops.tokens.sign(ticket.id)}"}
