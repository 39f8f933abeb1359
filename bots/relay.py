"""The agent relay: the staff supergroup as an agent desk, one forum topic per ticket.

Outward, ticket events become posts in the ticket's topic (customers' messages from any channel, with
who and which channel) through the outbox, so nothing is lost while Telegram is unreachable. Inward,
agents' messages in a topic arrive as `kind="staff"` inbox records: plain text is a public reply to
the customer on their own channel, `!text` and `/note` are internal notes, and commands change the
ticket (`bots.staff_commands`). Only Telegram users mapped to agent accounts may act.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pymongo.errors import DuplicateKeyError

from bots.agents import Agent, AgentDirectory
from bots.staff_commands import ArticleSource, StaffCommands
from bots.staff_sender import STAFF_CHANNEL
from bots.topics import TopicStore
from ticket_core.errors import NotFound, OmnigateError
from ticket_core.events import CustomerCommentAdded, EventDispatcher, TicketCreated
from ticket_core.messages import InboundMessage, OutboundMessage
from ticket_core.model import Ticket
from ticket_core.repository import CustomerRepository, Db, TicketRepository
from ticket_core.service import TicketService

log = logging.getLogger(__name__)

POST_LIMIT = 3500  # characters of a customer's text per post; the rest is in the ticket
CHANNEL_LABELS = {
    "telegram": "Telegram",
    "wechat": "WeChat",
    "email": "email",
    "webform": "web form",
    "fake": "test channel",
}


class Enqueue(Protocol):
    """The outbox, as the relay needs it."""

    async def enqueue(
        self,
        message: OutboundMessage,
        *,
        idempotency_key: str,
        ticket_id: str | None = None,
        event: str | None = None,
    ) -> str: ...


class AgentRelay:
    def __init__(
        self,
        *,
        bot: str,
        staff_chat_id: int,
        db: Db,
        outbox: Enqueue,
        service: TicketService,
        tickets: TicketRepository,
        customers: CustomerRepository,
        topics: TopicStore,
        knowledge: Callable[[], ArticleSource | None] = lambda: None,
    ) -> None:
        self.bot = bot
        self.staff_chat_id = staff_chat_id
        self._db = db
        self._outbox = outbox
        self._tickets = tickets
        self._customers = customers
        self._topics = topics
        self._agents = AgentDirectory(db)
        self._commands = StaffCommands(
            db=db, service=service, agents=self._agents, knowledge=knowledge, reply=self.post
        )

    def subscribe(self, events: EventDispatcher) -> None:
        events.register(TicketCreated, self.on_created)
        events.register(CustomerCommentAdded, self.on_comment)

    # -- outward: ticket events -> the ticket's topic ----------------------------------------------

    async def on_created(self, event: TicketCreated) -> None:
        ticket = await self._tickets.get(event.ticket_id)
        who = await self._who(ticket)
        lines = [
            f"🆕 {ticket.number} · {ticket.subject}",
            f"From: {who} via {_label(ticket.channel)}",
            f"Priority: {ticket.priority} · Status: {ticket.status}",
            "",
            _clip(ticket.description) or "(no text)",
        ]
        lines += _attachment_lines(ticket.attachments)
        lines += ["", "Reply here to answer the customer. !text is an internal note. /help lists commands."]
        await self.post(ticket, "\n".join(lines), key=f"relay:{event.event_id}", event="relay_created")

    async def on_comment(self, event: CustomerCommentAdded) -> None:
        if not event.text.strip() and not event.attachments:
            return  # a button tap recorded as an empty comment: nothing for agents to read
        ticket = await self._tickets.get(event.ticket_id)
        who = await self._who(ticket)
        lines = [f"💬 {who} via {_label(event.channel or ticket.channel)}:", _clip(event.text)]
        lines += _attachment_lines(event.attachments)
        await self.post(ticket, "\n".join(lines), key=f"relay:{event.event_id}", event="relay_comment")

    async def on_rated(self, ticket: Ticket, score: int, key: str) -> None:
        await self.post(ticket, f"⭐ The customer rated this ticket {score}/5.", key=f"relay:{key}")

    async def post(
        self,
        ticket: Ticket | None,
        text: str,
        *,
        key: str,
        event: str = "relay",
        reply_to: int | None = None,
        thread: int | None = None,
        buttons: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Queue a post in the ticket's topic (or, without a ticket, where the agent wrote)."""
        meta: dict[str, Any] = {"event": event}
        if ticket is not None:
            meta.update(ticket_id=ticket.id, ticket_number=ticket.number, topic_name=_topic_name(ticket))
        elif thread is not None:
            meta["message_thread_id"] = thread
        if reply_to is not None:
            meta["reply_to_message_id"] = reply_to
        message = OutboundMessage(
            channel=STAFF_CHANNEL,
            account=self.bot,
            recipient=str(self.staff_chat_id),
            text=text,
            buttons=buttons,
            ticket_number=ticket.number if ticket else None,
            meta=meta,
        )
        await self._outbox.enqueue(
            message, idempotency_key=key, ticket_id=ticket.id if ticket else None, event=event
        )

    async def _who(self, ticket: Ticket) -> str:
        try:
            customer = await self._customers.get(ticket.requester)
        except NotFound:
            return "unknown customer"
        contact = customer.email or customer.phone
        name = customer.name or contact or "customer"
        return f"{name} ({contact})" if contact and contact != name else name

    # -- inward: agents' messages -----------------------------------------------------------------

    async def __call__(self, msg: InboundMessage, record_id: str) -> dict[str, Any] | None:
        done_key = f"relay:{self.bot}:done:{msg.dedup_key}"
        if await self._db.channel_state.find_one({"key": done_key}, {"_id": 1}):
            return {"relay": "already handled"}  # a rerun after the work was done
        result = await self._handle(msg)
        try:
            await self._db.channel_state.insert_one({"key": done_key, "result": result})
        except DuplicateKeyError:
            pass
        return result

    async def _handle(self, msg: InboundMessage) -> dict[str, Any]:
        meta = msg.meta
        thread = _int(meta.get("message_thread_id")) if meta.get("is_topic_message") else None
        if "callback" in msg.fields and thread is None:
            thread = _int(meta.get("message_thread_id"))
        ticket = await self._ticket_for(msg, thread)
        command = msg.fields.get("command")
        is_ours = ticket is not None or command is not None or "callback" in msg.fields
        if not is_ours:
            return {"relay": "ignored", "reason": "not about a ticket"}
        user_id = _int(meta.get("user_id"))
        agent = await self._agents.by_telegram_id(user_id) if user_id is not None else None
        reply_to = _int(meta.get("message_id"))
        key = f"relay-answer:{msg.dedup_key}"
        if agent is None or not agent.can_act:
            name = msg.identity.display_name or "there"
            await self.post(
                ticket,
                f"Sorry {name}, only agents can answer customers or change tickets from this group; "
                f"nothing was sent. An admin can add you with: omnigate user add --name NAME "
                f"--role agent --telegram-id {user_id}",
                key=key,
                reply_to=reply_to,
                thread=thread,
            )
            return {"relay": "refused", "telegram_user_id": user_id}
        try:
            return await self._act(msg, agent, ticket, thread, reply_to, key)
        except OmnigateError as exc:
            await self.post(ticket, f"⚠️ {exc}", key=key, reply_to=reply_to, thread=thread)
            return {"relay": "error", "error": str(exc)}

    async def _act(
        self,
        msg: InboundMessage,
        agent: Agent,
        ticket: Ticket | None,
        thread: int | None,
        reply_to: int | None,
        key: str,
    ) -> dict[str, Any]:
        text = msg.text.strip()
        command = msg.fields.get("command")
        if "callback" in msg.fields:
            return await self._commands.button(msg.fields["callback"], agent, ticket, key=key, thread=thread)
        if command is not None:
            return await self._commands.run(
                command, msg.fields.get("args", ""), agent, ticket, key=key, reply_to=reply_to, thread=thread
            )
        assert ticket is not None
        if text.startswith("!"):
            return await self._commands.note(text[1:], agent, ticket)
        if not text:
            await self.post(
                ticket, "Only text is relayed to the customer for now.", key=key, reply_to=reply_to
            )
            return {"relay": "skipped", "reason": "no text"}
        updated = await self._commands.service.add_public_reply(ticket, text, agent.actor)
        return {"relay": "public_reply", "ticket_number": updated.number}

    async def _ticket_for(self, msg: InboundMessage, thread: int | None) -> Ticket | None:
        ticket_id: str | None = None
        if thread is not None:
            ticket_id = await self._topics.ticket_for_thread(thread)
        reply = _int(msg.meta.get("reply_to_message_id"))
        if ticket_id is None and reply is not None:
            ticket_id = await self._topics.ticket_for_message(reply)
        if ticket_id is None and "callback" in msg.fields:
            message_id = _int(msg.meta.get("message_id"))
            if message_id is not None:
                ticket_id = await self._topics.ticket_for_message(message_id)
        if ticket_id is None:
            return None
        try:
            return await self._tickets.get(ticket_id)
        except NotFound:
            return None


def _topic_name(ticket: Ticket) -> str:
    return f"{ticket.number} {ticket.subject}"


def _label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel)


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= POST_LIMIT else text[:POST_LIMIT] + "… (continued in the ticket)"


def _attachment_lines(attachments: Sequence[Mapping[str, Any]]) -> list[str]:
    names = [str(a.get("filename") or "file") for a in attachments]
    return [f"📎 {', '.join(names)}"] if names else []


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None
