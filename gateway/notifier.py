"""Turns ticket events into customer notifications: rendered templates become `outbox` records.

A notification goes to the channel the customer used; a channel without a way back (the web form)
names where its notifications go instead (email). Internal notes never reach the customer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.outbox import Outbox
from gateway.templating import TemplateRenderer
from ticket_core.events import EventDispatcher, PublicReplyAdded, StatusChanged, TicketCreated, TicketEvent
from ticket_core.messages import OutboundMessage
from ticket_core.model import Ticket
from ticket_core.repository import CustomerRepository, TicketRepository

log = logging.getLogger(__name__)

STATUS_LABELS = {
    "en": {
        "new": "new",
        "open": "open",
        "pending": "waiting for your reply",
        "on_hold": "on hold",
        "solved": "solved",
        "closed": "closed",
    },
    "zh-CN": {
        "new": "新建",
        "open": "处理中",
        "pending": "等待您回复",
        "on_hold": "挂起",
        "solved": "已解决",
        "closed": "已关闭",
    },
}


@dataclass(frozen=True)
class Route:
    channel: str
    account: str
    recipient: str


RouteFinder = Callable[[Ticket], Route | None]


@dataclass(frozen=True)
class Delivery:
    send: bool = True
    hold_seconds: float = 0.0  # quiet hours: the outbox keeps the notice until they end


class NotificationPolicy(Protocol):
    """Per-event switches and quiet hours (gateway.notification_policy); none means send at once."""

    async def decide(self, name: str, ticket: Ticket, event: TicketEvent) -> Delivery: ...


# Extra template variables for one notification (e.g. the CSAT link when a ticket is solved).
ContextHook = Callable[[str, Ticket, TicketEvent], Awaitable[dict[str, Any]]]


def route_to_origin(ticket: Ticket) -> Route | None:
    return Route(ticket.channel, ticket.account, ticket.reply_to) if ticket.reply_to else None


class Notifier:
    def __init__(
        self,
        tickets: TicketRepository,
        customers: CustomerRepository,
        outbox: Outbox,
        renderer: TemplateRenderer,
        *,
        public_url: str,
    ) -> None:
        self._tickets = tickets
        self._customers = customers
        self._outbox = outbox
        self._renderer = renderer
        self._public_url = public_url.rstrip("/")
        self._routes: dict[str, RouteFinder] = {}
        self.policy: NotificationPolicy | None = None
        self._context_hooks: list[ContextHook] = []

    def add_context(self, hook: ContextHook) -> None:
        self._context_hooks.append(hook)

    def route(self, channel: str, finder: RouteFinder) -> None:
        """Where notifications for tickets from `channel` go, when not back to the channel itself."""
        self._routes[channel] = finder

    def subscribe(self, events: EventDispatcher) -> None:
        events.register(TicketCreated, self.on_created)
        events.register(StatusChanged, self.on_status_changed)
        events.register(PublicReplyAdded, self.on_public_reply)

    async def on_created(self, event: TicketCreated) -> None:
        await self._notify(event, "ticket_created", {})

    async def on_status_changed(self, event: StatusChanged) -> None:
        await self._notify(event, "status_changed", {"event": event})

    async def on_public_reply(self, event: PublicReplyAdded) -> None:
        await self._notify(event, "public_reply", {"event": event}, automatic=False)

    async def notify(
        self, event: TicketEvent, name: str, extra: dict[str, Any], *, automatic: bool = True
    ) -> None:
        """Tell the customer about `event` with the templates of `name` (for events added elsewhere)."""
        await self._notify(event, name, extra, automatic=automatic)

    async def _notify(
        self, event: TicketEvent, name: str, extra: dict[str, Any], *, automatic: bool = True
    ) -> None:
        ticket = await self._tickets.get(event.ticket_id)
        route = self._routes.get(ticket.channel, route_to_origin)(ticket)
        if route is None:
            log.info("ticket %s: no way to reach the customer for %s", ticket.number, name)
            return
        delivery = await self.policy.decide(name, ticket, event) if self.policy else Delivery()
        if not delivery.send:
            return
        for hook in self._context_hooks:
            extra = {**extra, **await hook(name, ticket, event)}
        customer = await self._customers.get(ticket.requester)
        locale = ticket.locale
        context = {
            "ticket": ticket.public_view(),
            "event": event,
            "public_url": self._public_url,
            "customer_name": customer.name or "",
            "status_label": _status_label(getattr(event, "new", ticket.status), locale),
            **extra,
        }
        rendered = await self._renderer.render(name, route.channel, locale, context)
        message = OutboundMessage(
            channel=route.channel,
            account=route.account,
            recipient=route.recipient,
            text=rendered.text,
            subject=rendered.subject,
            html=rendered.html,
            locale=locale,
            ticket_number=ticket.number,
            automatic=automatic,
            meta={"event": name, "ticket_id": ticket.id, "conversation_key": ticket.conversation_key},
        )
        await self._outbox.enqueue(
            message,
            idempotency_key=f"notify:{event.event_id}:{route.channel}",
            ticket_id=ticket.id,
            event=name,
            hold_seconds=delivery.hold_seconds,
        )


def _status_label(status: str, locale: str) -> str:
    return STATUS_LABELS["zh-CN" if locale.startswith("zh") else "en"].get(status, status)
