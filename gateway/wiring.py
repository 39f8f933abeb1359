"""What an installer gets to plug a channel, bot or dialog into the process, and the list of installers.

Each channel's installer lives in its own module (`gateway/install_<name>.py`) and adds its adapter,
routes, background components and event handlers here; `create_app` runs them all in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from channels.base import ChannelRegistry
from gateway.attachments import GridFSAttachmentStore
from gateway.bus import InboundHandler, MessageBus
from gateway.config import Settings
from gateway.database import Database, Db
from gateway.lifecycle import Component
from gateway.notifier import Notifier
from gateway.outbox import Outbox
from gateway.templating import TemplateRenderer
from ticket_core.events import EventDispatcher
from ticket_core.messages import InboundMessage
from ticket_core.repository import MongoCustomerRepository, MongoTicketRepository
from ticket_core.service import TicketService


class InboundRouter:
    """The bus's one handler: picks a handler by message kind (staff messages go to the agent relay),
    everything else to the default (the dialog engine)."""

    def __init__(self, default: InboundHandler) -> None:
        self.default = default
        self._by_kind: dict[str, InboundHandler] = {}

    def add(self, kind: str, handler: InboundHandler) -> None:
        self._by_kind[kind] = handler

    async def __call__(self, msg: InboundMessage, record_id: str) -> dict[str, Any] | None:
        return await self._by_kind.get(msg.kind, self.default)(msg, record_id)


@dataclass
class Wiring:
    settings: Settings
    app: web.Application
    database: Database
    db: Db
    registry: ChannelRegistry
    events: EventDispatcher
    tickets: MongoTicketRepository
    customers: MongoCustomerRepository
    service: TicketService
    outbox: Outbox
    notifier: Notifier
    bus: MessageBus
    attachments: GridFSAttachmentStore
    renderer: TemplateRenderer
    router: InboundRouter
    # Started after the channels, in order, and stopped before them (pollers, relays, schedulers).
    components: list[Component] = field(default_factory=list)
    # Run once the database is up, before anything is served (seeding, loading indexes into memory).
    on_ready: list[Callable[[], object]] = field(default_factory=list)


Installer = Callable[[Wiring], None]


def installers() -> list[Installer]:
    """Every installer, in the order they run. Add a line when a channel or bot lands."""
    from gateway import (
        install_console,
        install_dialog,
        install_email,
        install_knowledge,
        install_operations,
        install_telegram,
        install_wechat,
    )

    return [
        install_dialog.install,
        install_knowledge.install,
        install_wechat.install,
        install_telegram.install,
        install_email.install,
        install_operations.install,
        install_console.install,
    ]
