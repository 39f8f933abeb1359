"""Agents' commands in a ticket's topic: /note, /claim, /assign, /status, /priority, /tag, /kb, /macro.

Each command changes the ticket through `TicketService` (so every change is a ticket event) and
answers in the topic. `/kb` needs the dialog's knowledge base; without one it says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from bots.agents import Agent, AgentDirectory
from ticket_core.errors import InvalidInput, NotFound
from ticket_core.model import PRIORITIES, STATUSES, Ticket
from ticket_core.repository import Db
from ticket_core.service import TicketService

KB_BUTTONS = 5
HELP = (
    "In a ticket's topic:\n"
    "• any text: public reply to the customer on their channel\n"
    "• !text or /note text: internal note\n"
    "• /claim · /assign @agent\n"
    "• /status pending|on_hold|solved|closed · /priority urgent|high|normal|low\n"
    "• /tag a b -c (add a and b, remove c)\n"
    "• /kb query: suggest articles, tap one to send it\n"
    "• /macro name: send a saved answer"
)


class Suggestion(Protocol):
    article_id: str
    title: str
    url: str
    summary: str


class ArticleSource(Protocol):
    """The dialog's knowledge base, as far as the relay uses it."""

    def suggest(self, text: str, *, locale: str | None = None, limit: int | None = None) -> Sequence[Any]: ...

    async def get(self, article_id: str) -> dict[str, Any]: ...

    def url(self, article_id: str) -> str: ...


Reply = Callable[..., Awaitable[None]]


class StaffCommands:
    def __init__(
        self,
        *,
        db: Db,
        service: TicketService,
        agents: AgentDirectory,
        knowledge: Callable[[], ArticleSource | None],
        reply: Reply,
    ) -> None:
        self._db = db
        self.service = service
        self._agents = agents
        self._knowledge = knowledge
        self._reply = reply

    async def run(
        self,
        command: str,
        args: str,
        agent: Agent,
        ticket: Ticket | None,
        *,
        key: str,
        reply_to: int | None,
        thread: int | None,
    ) -> dict[str, Any]:
        async def say(text: str, **extra: Any) -> None:
            await self._reply(ticket, text, key=key, reply_to=reply_to, thread=thread, **extra)

        if command in ("help", "start"):
            await say(HELP)
            return {"relay": "help"}
        if ticket is None:
            await say("Use this command inside a ticket's topic (or as a reply to the ticket's message).")
            return {"relay": "no_ticket", "command": command}
        if command == "note":
            return await self.note(args, agent, ticket)
        if command == "claim":
            await self.service.update_fields(ticket, agent.actor, assignee=agent.name)
            await say(f"✅ {ticket.number} is assigned to {agent.name}.")
            return {"relay": "claim", "assignee": agent.name}
        if command == "assign":
            target = await self._agents.by_handle(args.split()[0] if args.split() else "")
            if target is None:
                raise InvalidInput(f"no agent {args.strip() or '(none given)'}; usage: /assign @username")
            await self.service.update_fields(ticket, agent.actor, assignee=target.name)
            await say(f"✅ {ticket.number} is assigned to {target.name}.")
            return {"relay": "assign", "assignee": target.name}
        if command == "status":
            status = args.strip().lower()
            if status not in STATUSES or status == "new":
                raise InvalidInput("usage: /status pending|on_hold|solved|closed (or open)")
            updated = await self.service.change_status(ticket, status, agent.actor)
            await say(f"✅ {ticket.number} is now {updated.status}.")
            return {"relay": "status", "status": updated.status}
        if command == "priority":
            priority = args.strip().lower()
            if priority not in PRIORITIES:
                raise InvalidInput(f"usage: /priority {'|'.join(PRIORITIES)}")
            await self.service.update_fields(ticket, agent.actor, priority=priority)
            await say(f"✅ {ticket.number} priority: {priority}.")
            return {"relay": "priority", "priority": priority}
        if command == "tag":
            tags = _retag(ticket.tags, args.split())
            updated = await self.service.update_fields(ticket, agent.actor, tags=tags)
            await say(f"✅ tags: {', '.join(updated.tags) or '(none)'}")
            return {"relay": "tag", "tags": list(updated.tags)}
        if command == "kb":
            return await self._kb(args, ticket, say)
        if command == "macro":
            return await self._macro(args.strip(), agent, ticket, say)
        await say(f"Unknown command /{command}. /help lists the commands.")
        return {"relay": "unknown_command", "command": command}

    async def note(self, text: str, agent: Agent, ticket: Ticket) -> dict[str, Any]:
        await self.service.add_internal_note(ticket, text, agent.actor)
        return {"relay": "note", "ticket_number": ticket.number}

    async def button(
        self, data: str, agent: Agent, ticket: Ticket | None, *, key: str, thread: int | None
    ) -> dict[str, Any]:
        """A tap on one of our buttons in the group: `kb:<article>` sends the article."""
        action, _, value = data.partition(":")
        if action != "kb" or ticket is None:
            return {"relay": "ignored", "reason": f"button {data!r}"}
        kb = self._knowledge()
        if kb is None:
            raise InvalidInput("the knowledge base is not configured")
        article = await kb.get(value)
        text = f"{article.get('title', value)}\n{kb.url(value)}"
        await self.service.add_public_reply(ticket, text, agent.actor)
        await self._reply(ticket, f"✅ sent “{article.get('title', value)}” to the customer.", key=key)
        return {"relay": "kb_sent", "article": value}

    async def _kb(self, query: str, ticket: Ticket, say: Callable[..., Awaitable[None]]) -> dict[str, Any]:
        kb = self._knowledge()
        if kb is None:
            await say("The knowledge base is not configured, so /kb cannot suggest articles.")
            return {"relay": "kb", "configured": False}
        query = query.strip() or ticket.subject
        found = list(kb.suggest(query, locale=ticket.locale, limit=KB_BUTTONS))
        if not found:
            await say(f"No article matches “{query}”.")
            return {"relay": "kb", "found": 0}
        lines = [f"Articles for “{query}” (tap one to send it to the customer):"]
        buttons: list[tuple[str, str]] = []
        for n, s in enumerate(found, 1):
            lines.append(f"{n}. {s.title} {s.url}")
            data = f"kb:{s.article_id}"
            if len(data.encode("utf-8")) <= 64:  # Telegram's callback_data limit
                buttons.append((f"{n}. {s.title}"[:60], data))
        await say("\n".join(lines), buttons=tuple(buttons))
        return {"relay": "kb", "found": len(found)}

    async def _macro(
        self, name: str, agent: Agent, ticket: Ticket, say: Callable[..., Awaitable[None]]
    ) -> dict[str, Any]:
        macro = await self._db.macros.find_one({"name": name}) if name else None
        if macro is None:
            names = sorted([str(m["name"]) async for m in self._db.macros.find({}, {"name": 1}).limit(30)])
            raise NotFound(f"no macro {name!r}; macros: {', '.join(names) or '(none)'}")
        text = macro.get("text")
        if isinstance(text, dict):  # per locale
            text = text.get(ticket.locale) or text.get("en") or next(iter(text.values()), "")
        if isinstance(text, str) and text.strip():
            ticket = await self.service.add_public_reply(ticket, text, agent.actor)
        tags = macro.get("tags")
        priority = macro.get("priority")
        if tags or priority:
            ticket = await self.service.update_fields(
                ticket,
                agent.actor,
                tags=_retag(ticket.tags, [str(t) for t in tags]) if tags else None,
                priority=str(priority) if priority else None,
            )
        status = macro.get("status")
        if isinstance(status, str) and status and status != ticket.status:
            ticket = await self.service.change_status(ticket, status, agent.actor)
        await say(f"✅ macro {name} applied.")
        return {"relay": "macro", "macro": name}


def _retag(current: Sequence[str], words: Sequence[str]) -> list[str]:
    tags = set(current)
    for word in words:
        word = word.strip().lstrip("#")
        if word.startswith("-"):
            tags.discard(word[1:])
        elif word:
            tags.add(word)
    return sorted(tags)
