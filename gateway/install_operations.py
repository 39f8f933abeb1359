"""Plugs ticket operations in: assignment on creation, SLA clocks and the leased sweep, customer
notices (assignment, "still on it", rating links), agent notices, CSAT, report rollups and the APIs."""

from __future__ import annotations

import logging
from datetime import datetime

from gateway import csat_page
from gateway.api import operations as operations_api
from gateway.api import reports as reports_api
from gateway.appkeys import OPERATIONS
from gateway.csat_intake import CsatIntake, csat_link_hook
from gateway.facts_refresher import FactsRefresher
from gateway.notification_policy import NotificationPolicy
from gateway.operations import Operations
from gateway.ops_scheduler import OperationsScheduler
from gateway.staff_notices import StaffChat, StaffNotices
from gateway.wiring import Wiring
from ticket_core.assignment import AssignmentService, MongoRoutingStore
from ticket_core.csat import CsatService, CsatTokens
from ticket_core.events import (
    PublicReplyAdded,
    StatusChanged,
    TicketCreated,
    TicketEvent,
    TicketUpdated,
)
from ticket_core.model import Ticket
from ticket_core.ops_events import CsatRated, SlaBreached, SlaWarning, StillOnIt, TicketAssigned
from ticket_core.rollups import Rollups
from ticket_core.sla_tracker import SlaTracker

log = logging.getLogger(__name__)


def install(wiring: Wiring) -> None:
    db, events, settings = wiring.db, wiring.events, wiring.settings

    def clock() -> datetime:
        # Looked up per call: a test that swaps the service's clock moves every operation with it.
        return wiring.service.clock()

    routing = MongoRoutingStore(db)
    assignment = AssignmentService(routing, wiring.tickets, events, clock=clock)
    tracker = SlaTracker(db, wiring.tickets, events, clock=clock)
    rollups = Rollups(db, clock=clock)
    refresher = FactsRefresher(rollups)
    csat = CsatService(db, wiring.tickets, events, clock=clock)
    policy = NotificationPolicy(db, clock=clock)
    staff_bot = next((b for b in settings.telegram_bots if b.staff_chat_id), None)
    staff = StaffNotices(
        outbox=wiring.outbox,
        renderer=wiring.renderer,
        tickets=wiring.tickets,
        agents=routing,
        staff=StaffChat(staff_bot.name, staff_bot.staff_chat_id) if staff_bot else None,
        mailbox=settings.email_mailboxes[0].name if settings.email_mailboxes else None,
    )

    async def on_rating(ticket: Ticket) -> None:
        rating = ticket.csat or {}
        score = rating.get("score")
        if isinstance(score, int):
            task = await csat.follow_up(ticket, score, rating.get("comment"))
            if task is not None:
                await staff.low_rating(task)
        refresher.mark(ticket.id)

    scheduler = OperationsScheduler(db, tracker, rollups, on_rating, clock=clock)
    ops = Operations(
        db=db,
        routing=routing,
        assignment=assignment,
        sla=tracker,
        rollups=rollups,
        refresher=refresher,
        csat=csat,
        policy=policy,
        staff=staff,
        scheduler=scheduler,
        clock=clock,
        public_url=settings.server.public_url.rstrip("/"),
    )
    wiring.app[OPERATIONS] = ops

    # Order matters within one event type: assignment and SLA write the ticket, facts read it last.
    assignment.subscribe(events)
    tracker.subscribe(events)
    wiring.notifier.policy = policy

    async def link(name: str, ticket: Ticket, event: TicketEvent) -> dict[str, object]:
        return await csat_link_hook(ops, name, ticket, event)

    wiring.notifier.add_context(link)

    async def tell_customer_assigned(event: TicketAssigned) -> None:
        if event.assignee or event.team:
            await wiring.notifier.notify(event, "assigned", {"assignee": event.assignee, "team": event.team})

    async def still_on_it(event: StillOnIt) -> None:
        await wiring.notifier.notify(event, "still_on_it", {})

    async def rated(event: CsatRated) -> None:
        await wiring.notifier.notify(event, "csat_thanks", {"score": event.score})
        await on_rating(await wiring.tickets.get(event.ticket_id))

    events.register(TicketAssigned, tell_customer_assigned)
    events.register(TicketAssigned, staff.on_assigned)
    events.register(SlaWarning, staff.on_warning)
    events.register(SlaBreached, staff.on_breach)
    events.register(StillOnIt, still_on_it)
    events.register(CsatRated, rated)

    async def refresh(event: TicketEvent) -> None:
        refresher.mark(event.ticket_id)

    for kind in (TicketCreated, StatusChanged, PublicReplyAdded, TicketUpdated, TicketAssigned, SlaBreached):
        events.register(kind, refresh)

    async def ready() -> None:
        ops.tokens = await CsatTokens.load(db)
        # After every installer: whatever became the default handler, ratings are looked at first.
        wiring.router.default = CsatIntake(
            ops, wiring.tickets, wiring.customers, wiring.notifier, wiring.router.default
        )

    wiring.on_ready.append(ready)
    wiring.components.append(refresher)
    wiring.components.append(scheduler)
    wiring.app.router.add_routes(operations_api.routes)
    wiring.app.router.add_routes(reports_api.routes)
    wiring.app.router.add_routes(csat_page.routes)
