"""The bare intake rule until the dialog engine takes over: a form submission creates a ticket, and a
message on a conversation with a ticket that can take it is added to that ticket."""

from __future__ import annotations

from typing import Any

from ticket_core.errors import NotFound
from ticket_core.messages import InboundMessage
from ticket_core.model import Actor
from ticket_core.repository import CustomerRepository, TicketRepository
from ticket_core.service import NewTicket, TicketService


class TicketIntake:
    def __init__(
        self, service: TicketService, tickets: TicketRepository, customers: CustomerRepository
    ) -> None:
        self._service = service
        self._tickets = tickets
        self._customers = customers

    async def __call__(self, msg: InboundMessage, record_id: str) -> dict[str, Any]:
        customer = await self._customers.resolve(msg.identity, locale=msg.locale)
        actor = Actor("customer", customer.id, customer.name or msg.identity.display_name or "")
        attachments = [
            {"file_id": a.file_id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in msg.attachments
        ]
        if msg.kind != "form":
            current = await self._tickets.latest_for_conversation(msg.conversation_key)
            number = msg.meta.get("ticket_number")
            if number:  # the channel already knows the ticket (an email reply threaded by token)
                try:
                    current = await self._tickets.get_by_number(str(number))
                except NotFound:
                    pass
            if current is not None:
                updated = await self._service.add_customer_comment(
                    current,
                    msg.text,
                    actor,
                    channel=msg.channel,
                    event_id=f"inbox:{msg.dedup_key}",
                    attachments=attachments,
                )
                if updated is not None:
                    return {"ticket_number": updated.number, "ticket_id": updated.id, "action": "comment"}
        fields = dict(msg.fields)
        new = NewTicket(
            subject=msg.subject or fields.get("subject", "") or msg.text[:80],
            description=fields.get("description", "") or msg.text,
            channel=msg.channel,
            account=msg.account,
            customer=customer,
            conversation_key=msg.conversation_key,
            reply_to=str(msg.meta.get("reply_to") or msg.identity.external_id),
            locale=msg.locale or customer.locale or "en",
            category=fields.get("category") or None,
            fields=fields,
            attachments=tuple(attachments),
            source_key=msg.dedup_key,
        )
        ticket, created = await self._service.create(new, actor)
        return {
            "ticket_number": ticket.number,
            "ticket_id": ticket.id,
            "action": "created" if created else "existing",
        }
