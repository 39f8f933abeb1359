"""@mentions in replies and internal notes: each mentioned account with an email address gets an email
through the outbox (one per event and person, so a retried handler does not mail twice)."""

from __future__ import annotations

import logging
import re

from gateway.accounts.store import AccountStore
from gateway.outbox import Outbox
from ticket_core.events import InternalNoteAdded, PublicReplyAdded
from ticket_core.messages import OutboundMessage

log = logging.getLogger(__name__)
MENTION = re.compile(r"(?<![\w@.])@([\w.\-]{1,64})")


def mentioned(text: str) -> list[str]:
    return sorted({m.rstrip(".-") for m in MENTION.findall(text)})


class MentionNotifier:
    def __init__(
        self, accounts: AccountStore, outbox: Outbox, *, mailbox: str | None, public_url: str
    ) -> None:
        self._accounts = accounts
        self._outbox = outbox
        self._mailbox = mailbox
        self._public_url = public_url.rstrip("/")

    async def on_note_or_reply(self, event: InternalNoteAdded | PublicReplyAdded) -> None:
        handles = mentioned(event.text)
        if not handles:
            return
        people = [a for a in await self._accounts.by_handles(handles) if a.email and not a.disabled]
        if not people:
            return
        if self._mailbox is None:
            log.info(
                "ticket %s mentions %s, but no mailbox is configured to tell them",
                event.ticket_number,
                handles,
            )
            return
        link = f"{self._public_url}/admin/tickets/{event.ticket_number}"
        kind = "an internal note" if isinstance(event, InternalNoteAdded) else "a reply"
        for person in people:
            if person.name == event.actor.name:
                continue
            zh = person.locale == "zh-CN"
            subject = (
                f"[{event.ticket_number}] {event.actor.name} 在工单中提到了您"
                if zh
                else f"[{event.ticket_number}] {event.actor.name} mentioned you"
            )
            intro = (
                f"{event.actor.name} 在工单 {event.ticket_number} 中提到了您："
                if zh
                else (f"{event.actor.name} mentioned you in {kind} on {event.ticket_number}:")
            )
            await self._outbox.enqueue(
                OutboundMessage(
                    channel="email",
                    account=self._mailbox,
                    recipient=str(person.email),
                    subject=subject,
                    text=f"{intro}\n\n{event.text}\n\n{link}",
                    locale=person.locale,
                    ticket_number=event.ticket_number,
                    automatic=True,
                    meta={"event": "mention", "agent": person.name},
                ),
                idempotency_key=f"mention:{event.event_id}:{person.name}",
                ticket_id=event.ticket_id,
                event="mention",
            )
