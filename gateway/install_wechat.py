"""Plugs one WeChatChannel per configured `[[wechat.accounts]]` entry into the process.

The channel itself knows nothing of the gateway: this module hands it the bus, the outbox, the
attachment store, the MongoDB stores, and the template-message composer that renders
`templates/wechat/template_data.<locale>.json`.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC
from functools import cache
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from jinja2.sandbox import SandboxedEnvironment

from channels.settings import WeChatAccount
from channels.wechat.channel import WeChatChannel
from channels.wechat.clock import AdjustableClock
from channels.wechat.outbound import TemplateMessage
from channels.wechat.stores import (
    CustomerServiceWindow,
    MongoDeliveryLog,
    MongoNonceCache,
    MongoTokenStore,
)
from gateway.database import Db
from gateway.notifier import STATUS_LABELS
from gateway.templating import TEMPLATE_ROOT, normalise_locale
from gateway.wiring import Wiring
from ticket_core.errors import NotFound
from ticket_core.messages import AttachmentRef, OutboundMessage
from ticket_core.repository import TicketRepository

#: WeChat shows template values on one line each; long values are cut by the client anyway.
MAX_VALUE_CHARS = 200
_ENV = SandboxedEnvironment(autoescape=False)


@cache
def _template_data(locale: str) -> dict[str, Any]:
    path = TEMPLATE_ROOT / "wechat" / f"template_data.{locale}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


class WeChatTemplateComposer:
    """A ticket notification as a template message, for when the customer-service window is closed."""

    def __init__(self, account: WeChatAccount, tickets: TicketRepository, *, public_url: str) -> None:
        self._templates = dict(account.templates)
        self._tickets = tickets
        self._public_url = public_url.rstrip("/")

    async def compose(self, message: OutboundMessage) -> TemplateMessage | None:
        event = str(message.meta.get("event") or "")
        ticket_id = str(message.meta.get("ticket_id") or "")
        if not event or not ticket_id:
            return None
        try:
            ticket = await self._tickets.get(ticket_id)
        except NotFound:
            return None
        name = "solved" if event == "status_changed" and ticket.status == "solved" else event
        template_id = (
            self._templates.get(name) or self._templates.get(event) or self._templates.get("default")
        )
        if not template_id:
            return None
        locale = normalise_locale(message.locale or ticket.locale)
        data = _template_data(locale)
        fields = data["templates"].get(template_id) or data["events"].get(name) or data["events"].get(event)
        if not fields:
            return None
        context = {
            "ticket": ticket.public_view(),
            "status_label": STATUS_LABELS[locale].get(ticket.status, ticket.status),
            "text": message.text,
            "event": name,
            "public_url": self._public_url,
            "updated_at": ticket.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        rendered = {
            key: _ENV.from_string(source).render(context).strip()[:MAX_VALUE_CHARS]
            for key, source in fields.items()
        }
        return TemplateMessage(template_id=template_id, data=rendered)


class InboxMediaAttacher:
    """Adds media that arrived after publishing to the stored inbox record."""

    def __init__(self, db: Db) -> None:
        self._db = db

    async def add(self, record_id: str, attachment: AttachmentRef) -> None:
        try:
            oid = ObjectId(record_id)
        except InvalidId:
            return
        await self._db.inbox.update_one(
            {"_id": oid}, {"$push": {"message.attachments": dataclasses.asdict(attachment)}}
        )


def install(wiring: Wiring) -> None:
    accounts = wiring.settings.wechat_accounts
    if not accounts:
        return
    nonces = MongoNonceCache(wiring.db)
    tokens = MongoTokenStore(wiring.db)
    delivery = MongoDeliveryLog(wiring.db)
    attacher = InboxMediaAttacher(wiring.db)
    for account in accounts:
        clock = AdjustableClock()
        wiring.registry.add(
            WeChatChannel(
                account,
                intake=wiring.bus,
                outbox=wiring.outbox,
                attachments=wiring.attachments,
                nonce_cache=nonces,
                token_store=tokens,
                window=CustomerServiceWindow(wiring.db, account.name, clock=clock),
                delivery_log=delivery,
                late_media=attacher,
                composer=WeChatTemplateComposer(
                    account, wiring.tickets, public_url=wiring.settings.server.public_url
                ),
                clock=clock,
            )
        )
