"""The aiohttp application factory: builds the object graph once and runs it under one lifecycle."""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from aiohttp import web

from channels.base import Channel, ChannelRegistry
from channels.email.sender import EmailChannel
from channels.webform.channel import WebFormChannel, WebFormLimits
from channels.webform.forms import MongoFormStore
from dialog.intake import TicketIntake
from gateway import appkeys as keys
from gateway.api import ops, tickets
from gateway.api.auth import auth_middleware
from gateway.api.openapi import openapi
from gateway.attachments import GridFSAttachmentStore
from gateway.bus import MessageBus
from gateway.config import Settings
from gateway.database import Database
from gateway.http_errors import error_middleware
from gateway.lifecycle import Component
from gateway.logs import request_id_middleware
from gateway.migrations import migrate
from gateway.notifier import Notifier, Route
from gateway.outbox import Outbox
from gateway.templating import TemplateRenderer
from gateway.tokens import TokenService
from gateway.wiring import InboundRouter, Wiring, installers
from ticket_core.events import EventDispatcher
from ticket_core.model import Ticket
from ticket_core.repository import MongoCustomerRepository, MongoTicketRepository
from ticket_core.service import TicketService

log = logging.getLogger(__name__)


class _ChannelLifecycle(Component):
    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    async def initialize(self) -> None:
        await self._channel.initialize()

    async def shutdown(self) -> None:
        await self._channel.shutdown()


def create_app(
    settings: Settings, *, channels: Sequence[Channel] = (), run_outbox: bool = True
) -> web.Application:
    """Call inside the event loop that will serve the app (the database client binds to it)."""
    database = Database(settings)
    db = database.db
    registry = ChannelRegistry()
    ticket_repo = MongoTicketRepository(db, prefix=settings.tickets.number_prefix)
    customers = MongoCustomerRepository(db)
    events = EventDispatcher()
    service = TicketService(
        ticket_repo, events, reopen_window=timedelta(days=settings.tickets.reopen_window_days)
    )
    outbox = Outbox(db, registry, settings.outbox, run_worker=run_outbox)
    renderer = TemplateRenderer(db)
    notifier = Notifier(ticket_repo, customers, outbox, renderer, public_url=settings.server.public_url)
    notifier.subscribe(events)
    router = InboundRouter(TicketIntake(service, ticket_repo, customers))
    bus = MessageBus(db, settings.bus, router, dispatch=settings.bus.dispatch)
    attachments = GridFSAttachmentStore(db)
    forms = MongoFormStore(db)

    app = web.Application(
        middlewares=[request_id_middleware, error_middleware, auth_middleware],
        client_max_size=settings.server.max_body_bytes,
    )
    wiring = Wiring(
        settings=settings,
        app=app,
        database=database,
        db=db,
        registry=registry,
        events=events,
        tickets=ticket_repo,
        customers=customers,
        service=service,
        outbox=outbox,
        notifier=notifier,
        bus=bus,
        attachments=attachments,
        renderer=renderer,
        router=router,
    )

    registry.add(
        WebFormChannel(
            forms,
            bus,
            attachments,
            WebFormLimits(
                max_file_bytes=settings.storage.max_attachment_bytes,
                max_body_bytes=settings.server.max_body_bytes,
                wait_for_ticket_seconds=settings.server.form_wait_seconds,
            ),
        )
    )
    for mailbox in settings.email_mailboxes:
        registry.add(EmailChannel(mailbox))
    for channel in channels:
        registry.add(channel)
    # A web form cannot be answered in place: its customers hear from us by email, when we have a mailbox.
    first_mailbox = settings.email_mailboxes[0].name if settings.email_mailboxes else None

    def by_email(ticket: Ticket) -> Route | None:
        if first_mailbox is None or "@" not in ticket.reply_to:
            return None
        return Route("email", first_mailbox, ticket.reply_to)

    notifier.route("webform", by_email)
    for install in installers():
        install(wiring)

    app[keys.SETTINGS] = settings
    app[keys.DATABASE] = database
    app[keys.BUS] = bus
    app[keys.OUTBOX] = outbox
    app[keys.CHANNELS] = registry
    app[keys.TICKETS] = ticket_repo
    app[keys.CUSTOMERS] = customers
    app[keys.TICKET_SERVICE] = service
    app[keys.TOKENS] = TokenService(db)
    app[keys.ATTACHMENTS] = attachments
    app[keys.RENDERER] = renderer

    for channel in registry:
        channel.register(app)
    app.router.add_get("/healthz", ops.healthz)
    app.router.add_get("/metrics", ops.metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_routes(tickets.routes)
    app.router.add_get("/", _home)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(database)
            await migrate(db)
            if await forms.seed_default():
                log.info("seeded the default web form 'support'")
            for ready in wiring.on_ready:
                result = ready()
                if inspect.isawaitable(result):
                    await result
            for channel in registry:
                await stack.enter_async_context(_ChannelLifecycle(channel))
            await stack.enter_async_context(outbox)
            for component in wiring.components:
                await stack.enter_async_context(component)
            await stack.enter_async_context(bus)
            yield

    app.cleanup_ctx.append(lifecycle)
    return app


async def _home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/forms/support")
