"""Ticket use cases: every change is persisted, recorded in `ticket_events`, then published."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from ticket_core.errors import InvalidInput
from ticket_core.events import (
    CustomerCommentAdded,
    EventDispatcher,
    InternalNoteAdded,
    PublicReplyAdded,
    StatusChanged,
    TicketCreated,
    TicketEvent,
    TicketUpdated,
)
from ticket_core.model import PRIORITIES, Actor, Customer, Ticket
from ticket_core.repository import TicketRepository
from ticket_core.status import check_transition, status_after_customer_reply

MAX_SUBJECT = 250
MAX_TEXT = 64 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True)
class NewTicket:
    subject: str
    description: str
    channel: str
    account: str
    customer: Customer
    conversation_key: str
    reply_to: str
    locale: str = "en"
    category: str | None = None
    priority: str = "normal"
    tags: tuple[str, ...] = ()
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
    attachments: tuple[Mapping[str, Any], ...] = ()
    source_key: str | None = None


class TicketService:
    def __init__(
        self,
        tickets: TicketRepository,
        events: EventDispatcher,
        *,
        reopen_window: timedelta = timedelta(days=7),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.tickets = tickets
        self.events = events
        self.reopen_window = reopen_window
        self.clock = clock

    async def _record(
        self,
        ticket: Ticket,
        kind: str,
        actor: Actor,
        data: Mapping[str, Any],
        event_id: str | None = None,
        at: datetime | None = None,
    ) -> tuple[str, bool]:
        event_id = event_id or str(ObjectId())
        fresh = await self.tickets.append_event(
            {
                "event_id": event_id,
                "ticket_id": ticket.id,
                "number": ticket.number,
                "type": kind,
                "actor": dataclasses.asdict(actor),
                "at": at or self.clock(),
                "data": dict(data),
            }
        )
        return event_id, fresh

    async def create(self, new: NewTicket, actor: Actor) -> tuple[Ticket, bool]:
        """Idempotent on `source_key`: a retried intake returns the ticket it already made."""
        if new.priority not in PRIORITIES:
            raise InvalidInput(f"unknown priority {new.priority!r}", code="invalid_priority")
        now = self.clock()
        subject = (
            " ".join(new.subject.split())[:MAX_SUBJECT] or new.description.strip()[:80] or "(no subject)"
        )
        ticket = Ticket(
            id=str(ObjectId()),
            number=await self.tickets.next_number(),
            subject=subject,
            status="new",
            priority=new.priority,
            channel=new.channel,
            account=new.account,
            requester=new.customer.id,
            created_at=now,
            updated_at=now,
            category=new.category,
            tags=tuple(new.tags),
            description=new.description[:MAX_TEXT],
            locale=new.locale,
            conversation_key=new.conversation_key,
            reply_to=new.reply_to,
            source_key=new.source_key,
            fields=dict(new.fields),
            attachments=tuple(new.attachments),
        )
        ticket, created = await self.tickets.insert(ticket)
        event_id = f"{ticket.id}:created"
        await self._record(
            ticket,
            "created",
            actor,
            {"subject": ticket.subject, "channel": ticket.channel},
            event_id=event_id,
            at=ticket.created_at,
        )
        # Published on a retry too: the first attempt may have died before its notification was queued.
        await self.events.publish(TicketCreated(event_id, ticket.id, ticket.number, ticket.created_at, actor))
        return ticket, created

    async def change_status(self, ticket: Ticket, status: str, actor: Actor) -> Ticket:
        check_transition(ticket.status, status)
        if status == ticket.status:
            return ticket
        now = self.clock()
        changes: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "solved":
            changes["solved_at"] = now
        if status == "closed":
            changes["closed_at"] = now
        updated = await self.tickets.update(ticket.id, changes)
        reopened = ticket.status == "solved" and status == "open"
        event_id, _ = await self._record(
            updated,
            "status_changed",
            actor,
            {"old": ticket.status, "new": status, "reopened": reopened},
            at=now,
        )
        await self.events.publish(
            StatusChanged(
                event_id,
                updated.id,
                updated.number,
                now,
                actor,
                old=ticket.status,
                new=status,
                reopened=reopened,
            )
        )
        return updated

    async def add_public_reply(
        self, ticket: Ticket, text: str, actor: Actor, attachments: Sequence[dict[str, Any]] = ()
    ) -> Ticket:
        text = _clean_text(text)
        now = self.clock()
        changes: dict[str, Any] = {"updated_at": now}
        if ticket.status == "new":
            # An agent's first answer opens the ticket; the reply itself is what the customer is told.
            changes["status"] = "open"
        updated = await self.tickets.update(ticket.id, changes)
        if ticket.status == "new":
            await self._record(
                updated, "status_changed", actor, {"old": "new", "new": "open", "silent": True}, at=now
            )
        event_id, _ = await self._record(
            updated, "public_reply", actor, {"text": text, "attachments": list(attachments)}, at=now
        )
        await self.events.publish(
            PublicReplyAdded(
                event_id, updated.id, updated.number, now, actor, text=text, attachments=tuple(attachments)
            )
        )
        return updated

    async def add_internal_note(self, ticket: Ticket, text: str, actor: Actor) -> Ticket:
        text = _clean_text(text)
        now = self.clock()
        updated = await self.tickets.update(ticket.id, {"updated_at": now})
        event_id, _ = await self._record(updated, "internal_note", actor, {"text": text}, at=now)
        await self.events.publish(
            InternalNoteAdded(event_id, updated.id, updated.number, now, actor, text=text)
        )
        return updated

    def accepts_customer_reply(self, ticket: Ticket) -> bool:
        return (
            status_after_customer_reply(ticket.status, ticket.solved_at, self.clock(), self.reopen_window)
            is not None
        )

    async def add_customer_comment(
        self,
        ticket: Ticket,
        text: str,
        actor: Actor,
        *,
        channel: str,
        event_id: str,
        attachments: Sequence[dict[str, Any]] = (),
    ) -> Ticket | None:
        """Append a customer's message; None when the ticket can no longer take it (closed, or solved
        longer ago than the reopen window), so the caller starts a new conversation."""
        now = self.clock()
        target = status_after_customer_reply(ticket.status, ticket.solved_at, now, self.reopen_window)
        if target is None:
            return None
        _, fresh = await self._record(
            ticket,
            "customer_comment",
            actor,
            {"text": text, "channel": channel, "attachments": list(attachments)},
            event_id=event_id,
            at=now,
        )
        if not fresh:
            return ticket  # a retried intake: already appended
        updated = await self.tickets.update(ticket.id, {"updated_at": now})
        await self.events.publish(
            CustomerCommentAdded(
                event_id,
                ticket.id,
                ticket.number,
                now,
                actor,
                text=text,
                channel=channel,
                attachments=tuple(attachments),
            )
        )
        if target != ticket.status:
            updated = await self.change_status(updated, target, actor)
        return updated

    async def update_fields(
        self,
        ticket: Ticket,
        actor: Actor,
        *,
        priority: str | None = None,
        assignee: str | None = None,
        tags: Sequence[str] | None = None,
        category: str | None = None,
    ) -> Ticket:
        changes: dict[str, Any] = {}
        diff: dict[str, Any] = {}
        if priority is not None and priority != ticket.priority:
            if priority not in PRIORITIES:
                raise InvalidInput(
                    f"unknown priority {priority!r}; expected one of {', '.join(PRIORITIES)}",
                    code="invalid_priority",
                )
            changes["priority"], diff["priority"] = priority, [ticket.priority, priority]
        if assignee is not None and assignee != ticket.assignee:
            changes["assignee"], diff["assignee"] = assignee or None, [ticket.assignee, assignee or None]
        if tags is not None:
            clean = sorted({t.strip() for t in tags if t.strip()})
            if tuple(clean) != tuple(ticket.tags):
                changes["tags"], diff["tags"] = clean, [list(ticket.tags), clean]
        if category is not None and category != ticket.category:
            changes["category"], diff["category"] = category, [ticket.category, category]
        if not changes:
            return ticket
        now = self.clock()
        changes["updated_at"] = now
        updated = await self.tickets.update(ticket.id, changes)
        event_id, _ = await self._record(updated, "updated", actor, {"changes": diff}, at=now)
        await self.events.publish(
            TicketUpdated(event_id, updated.id, updated.number, now, actor, changes=diff)
        )
        return updated


def _clean_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidInput("text must not be empty", code="empty_text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"text is longer than {MAX_TEXT} characters", code="text_too_long")
    return text


__all__ = ["NewTicket", "TicketEvent", "TicketService"]
