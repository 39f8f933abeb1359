"""Notices for agents: assignments, SLA warnings and breaches, low ratings.

Each goes through the outbox twice over: into the staff group through the Telegram relay (the
ticket's topic, when a bot with a staff chat is configured) and by email to the agent (through the
first mailbox). Idempotency keys derive from the event id, so a repeated event adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.outbox import Outbox
from gateway.templating import TemplateRenderer
from ticket_core.errors import NotFound
from ticket_core.messages import OutboundMessage
from ticket_core.model import Ticket
from ticket_core.ops_events import SlaBreached, SlaWarning, TicketAssigned
from ticket_core.repository import TicketRepository
from ticket_core.routing import AgentProfile

log = logging.getLogger(__name__)
STAFF_CHANNEL = "telegram_staff"  # bots.staff_sender registers this sender when the relay runs
METRIC_LABELS = {
    "en": {"first_response": "first response", "resolution": "resolution"},
    "zh-CN": {"first_response": "首次响应", "resolution": "解决"},
}


@dataclass(frozen=True)
class StaffChat:
    bot: str
    chat_id: int


class AgentLookup(Protocol):
    """What the notices need of the routing store (agents by name, a team's lead)."""

    async def agent(self, name: str) -> AgentProfile | None: ...
    async def lead_of(self, team: str | None) -> str | None: ...


class StaffNotices:
    def __init__(
        self,
        *,
        outbox: Outbox,
        renderer: TemplateRenderer,
        tickets: TicketRepository,
        agents: AgentLookup,
        staff: StaffChat | None,
        mailbox: str | None,
        locale: str = "zh-CN",
    ) -> None:
        self._outbox = outbox
        self._renderer = renderer
        self._tickets = tickets
        self._agents = agents
        self._staff = staff
        self._mailbox = mailbox
        self._locale = locale

    async def on_assigned(self, event: TicketAssigned) -> None:
        if not event.assignee:
            return
        ticket = await self._tickets.get(event.ticket_id)
        context = {"assignee": event.assignee, "team": event.team}
        await self.send("agent_assigned", ticket, [event.assignee], context, key=event.event_id)

    async def on_warning(self, event: SlaWarning) -> None:
        ticket = await self._tickets.get(event.ticket_id)
        to = ticket.assignee or await self._agents.lead_of(ticket.team)
        context = {"metric": event.metric, "due": event.due, "assignee": ticket.assignee}
        await self.send("sla_warning", ticket, [to] if to else [], context, key=event.event_id)

    async def on_breach(self, event: SlaBreached) -> None:
        """Escalation: the team lead (and the assignee, who should know) hear of it."""
        ticket = await self._tickets.get(event.ticket_id)
        lead = await self._agents.lead_of(ticket.team)
        people = [p for p in dict.fromkeys((lead, ticket.assignee)) if p]
        context = {"metric": event.metric, "due": event.due, "assignee": ticket.assignee, "lead": lead}
        await self.send("sla_breached", ticket, people, context, key=event.event_id)

    async def low_rating(self, task: dict[str, Any]) -> None:
        try:
            ticket = await self._tickets.get(str(task["ticket_id"]))
        except NotFound:
            return
        lead = task.get("assignee")
        context = {"score": task["score"], "comment": task.get("comment"), "lead": lead}
        await self.send("csat_follow_up", ticket, [lead] if lead else [], context, key=str(task["_id"]))

    async def send(
        self, name: str, ticket: Ticket, people: list[str], extra: dict[str, Any], *, key: str
    ) -> None:
        if self._staff is not None:
            rendered = await self._renderer.render(
                name, STAFF_CHANNEL, self._locale, self._context(ticket, extra, self._locale)
            )
            mentions = [await self._mention(p) for p in people]
            text = rendered.text + (("\n" + " ".join(m for m in mentions if m)) if any(mentions) else "")
            await self._outbox.enqueue(
                OutboundMessage(
                    channel=STAFF_CHANNEL,
                    account=self._staff.bot,
                    recipient=str(self._staff.chat_id),
                    text=text,
                    ticket_number=ticket.number,
                    meta={
                        "event": name,
                        "ticket_id": ticket.id,
                        "ticket_number": ticket.number,
                        "topic_name": f"{ticket.number} {ticket.subject}",
                    },
                ),
                idempotency_key=f"staff:{name}:{key}",
                ticket_id=ticket.id,
                event=name,
            )
        if self._mailbox is None:
            return
        for person in people:
            agent = await self._agents.agent(person)
            if agent is None or not agent.email:
                continue
            # Each agent reads their notices in their own console language.
            rendered = await self._renderer.render(
                name, "email", agent.locale, self._context(ticket, extra, agent.locale)
            )
            await self._outbox.enqueue(
                OutboundMessage(
                    channel="email",
                    account=self._mailbox,
                    recipient=agent.email,
                    text=rendered.text,
                    subject=rendered.subject or rendered.text[:120],
                    html=rendered.html,
                    locale=agent.locale,
                    ticket_number=ticket.number,
                    automatic=True,
                    meta={"event": name, "ticket_id": ticket.id, "to_agent": person},
                ),
                idempotency_key=f"agent-mail:{name}:{key}:{person}",
                ticket_id=ticket.id,
                event=name,
            )

    @staticmethod
    def _context(ticket: Ticket, extra: dict[str, Any], locale: str) -> dict[str, Any]:
        labels = METRIC_LABELS["zh-CN" if locale.startswith("zh") else "en"]
        metric = str(extra.get("metric") or "")
        return {"ticket": ticket.public_view(), "metric_label": labels.get(metric, metric), **extra}

    async def _mention(self, name: str) -> str:
        agent = await self._agents.agent(name)
        if agent is None:
            return ""
        return f"@{agent.username}" if agent.username else agent.name
