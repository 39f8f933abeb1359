"""Accounts and access, the web console (`/admin/`), the REST endpoints it calls, outgoing webhooks and
@mention notices. Runs after the knowledge and operations installers, whose routes it builds on."""

from __future__ import annotations

from gateway.accounts.audit import AuditLog
from gateway.accounts.sessions import SessionStore
from gateway.accounts.setup_links import SetupLinks
from gateway.accounts.store import AccountStore
from gateway.accounts.throttle import LoginThrottle
from gateway.api import accounts, desk, desk_status, kb_tools, templates_api, webhooks
from gateway.api.admin_audit import audit_middleware
from gateway.appkeys import ACCOUNTS, AUDIT, LIVE, LOGIN_THROTTLE, SESSIONS, SETUP_LINKS
from gateway.console import pages
from gateway.console.live import LiveFeed
from gateway.console.mentions import MentionNotifier
from gateway.webhooks import WebhookChannel, WebhookPublisher
from gateway.wiring import Wiring
from ticket_core.errors import NotFound
from ticket_core.events import InternalNoteAdded, PublicReplyAdded, TicketEvent


def install(wiring: Wiring) -> None:
    app, db = wiring.app, wiring.db
    account_store = AccountStore(db)
    app[ACCOUNTS] = account_store
    app[SESSIONS] = SessionStore(db)
    app[LOGIN_THROTTLE] = LoginThrottle(db)
    app[AUDIT] = AuditLog(db)
    app[SETUP_LINKS] = SetupLinks(db)
    # Older admin endpoints (articles, matching, rules, routing) get their audit records here.
    app.middlewares.append(audit_middleware)

    async def team_of(ticket_id: str) -> str | None:
        try:
            return getattr(await wiring.tickets.get(ticket_id), "team", None)
        except NotFound:
            return None

    live = LiveFeed(team_of)
    app[LIVE] = live
    wiring.events.register(TicketEvent, live.on_event)
    app.on_shutdown.append(live.close)

    mailbox = wiring.settings.email_mailboxes[0].name if wiring.settings.email_mailboxes else None
    mentions = MentionNotifier(
        account_store, wiring.outbox, mailbox=mailbox, public_url=wiring.settings.server.public_url
    )
    wiring.events.register(InternalNoteAdded, mentions.on_note_or_reply)
    wiring.events.register(PublicReplyAdded, mentions.on_note_or_reply)

    wiring.registry.add(WebhookChannel(db))
    wiring.events.register(TicketEvent, WebhookPublisher(db, wiring.tickets, wiring.outbox).on_event)

    router = app.router
    router.add_routes(kb_tools.routes)
    router.add_routes(accounts.routes)
    router.add_routes(desk.routes)
    router.add_routes(templates_api.routes)
    router.add_routes(webhooks.routes)
    router.add_routes(desk_status.routes)
    router.add_routes(pages.routes())
