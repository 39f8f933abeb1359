"""Domain events (frozen dataclasses) and a dispatcher that calls handlers registered by type."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from ticket_core.model import Actor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TicketEvent:
    event_id: str  # deterministic where a retry could emit it again, so consumers can dedupe
    ticket_id: str
    ticket_number: str
    at: datetime
    actor: Actor


@dataclass(frozen=True)
class TicketCreated(TicketEvent):
    pass


@dataclass(frozen=True)
class StatusChanged(TicketEvent):
    old: str
    new: str
    reopened: bool = False


@dataclass(frozen=True)
class PublicReplyAdded(TicketEvent):
    text: str
    attachments: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class InternalNoteAdded(TicketEvent):
    text: str


@dataclass(frozen=True)
class CustomerCommentAdded(TicketEvent):
    text: str
    channel: str = ""
    attachments: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class TicketUpdated(TicketEvent):
    changes: dict[str, Any] = field(default_factory=dict)  # field -> [old, new]


E = TypeVar("E", bound=TicketEvent)
Handler = Callable[[Any], Awaitable[None]]


class EventDispatcher:
    """Handlers are plain async functions. Every handler runs; the first failure is raised afterwards so
    the caller (an inbox record's handler) is retried, and consumers dedupe on `event_id`."""

    def __init__(self) -> None:
        self._handlers: dict[type[TicketEvent], list[Handler]] = defaultdict(list)

    def register(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        self._handlers[event_type].append(handler)

    async def publish(self, event: TicketEvent) -> None:
        first_error: Exception | None = None
        for event_type in type(event).__mro__:
            for handler in self._handlers.get(event_type, ()):
                try:
                    await handler(event)
                except Exception as exc:
                    log.exception("handler %s failed for %s", getattr(handler, "__name__", handler), event)
                    first_error = first_error or exc
        if first_error is not None:
            raise first_error
