"""Outgoing webhooks: ticket events for CRM/ERP systems, signed with HMAC-SHA256 and delivered through the
outbox as the `webhook` channel, so they get the outbox's retries, backoff and dead-letter state.

Signature: `X-Omnigate-Signature: sha256=<hex of HMAC(secret, "<timestamp>.<body>")>` with the same
`X-Omnigate-Timestamp` (Unix seconds): a receiver checks both and refuses old timestamps (replays).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
from aiohttp import web
from bson import ObjectId
from bson.errors import InvalidId

from channels.base import SendResult
from gateway.database import Db
from gateway.outbox import Outbox
from ticket_core.errors import ChannelUnavailable, PermanentDeliveryError, RateLimited
from ticket_core.events import (
    CustomerCommentAdded,
    InternalNoteAdded,
    PublicReplyAdded,
    StatusChanged,
    TicketCreated,
    TicketEvent,
    TicketUpdated,
)
from ticket_core.messages import OutboundMessage
from ticket_core.repository import MongoTicketRepository

ACCOUNT = "default"
EVENT_TYPES: dict[type[TicketEvent], str] = {
    TicketCreated: "ticket.created",
    StatusChanged: "ticket.status_changed",
    PublicReplyAdded: "ticket.public_reply",
    InternalNoteAdded: "ticket.internal_note",
    CustomerCommentAdded: "ticket.customer_comment",
    TicketUpdated: "ticket.updated",
}
TIMEOUT = aiohttp.ClientTimeout(total=10)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def event_type(event: TicketEvent) -> str:
    return EVENT_TYPES.get(type(event), "ticket." + type(event).__name__.lower())


def _event_data(event: TicketEvent) -> dict[str, Any]:
    base = {f.name for f in dataclasses.fields(TicketEvent)}
    data = {}
    for f in dataclasses.fields(event):
        if f.name not in base:
            value = getattr(event, f.name)
            data[f.name] = list(value) if isinstance(value, tuple) else value
    return data


class WebhookPublisher:
    """Turns each ticket event into one outbox record per matching, active subscription."""

    def __init__(self, db: Db, tickets: MongoTicketRepository, outbox: Outbox) -> None:
        self._db = db
        self._tickets = tickets
        self._outbox = outbox

    async def on_event(self, event: TicketEvent) -> None:
        kind = event_type(event)
        subscriptions = [
            s
            async for s in self._db.webhooks.find(
                {"active": True, "events": {"$in": ["*", kind]}}, {"url": 1}
            )
        ]
        if not subscriptions:
            return
        ticket = await self._tickets.get(event.ticket_id)
        payload = {
            "id": event.event_id,
            "type": kind,
            "at": event.at.isoformat(),
            "actor": dataclasses.asdict(event.actor),
            "ticket": {
                "id": ticket.id,
                "number": ticket.number,
                "subject": ticket.subject,
                "status": ticket.status,
                "priority": ticket.priority,
                "channel": ticket.channel,
                "category": ticket.category,
                "assignee": ticket.assignee,
                "team": getattr(ticket, "team", None),
                "tags": list(ticket.tags),
                "updated_at": ticket.updated_at.isoformat(),
            },
            "data": _event_data(event),
        }
        body = json.dumps(payload, ensure_ascii=False, default=str)
        for sub in subscriptions:
            await self._outbox.enqueue(
                OutboundMessage(
                    channel="webhook",
                    account=ACCOUNT,
                    recipient=str(sub["url"]),
                    text=body,
                    kind="webhook",
                    ticket_number=ticket.number,
                    meta={"subscription": str(sub["_id"]), "event": kind, "delivery": event.event_id},
                ),
                idempotency_key=f"webhook:{event.event_id}:{sub['_id']}",
                ticket_id=ticket.id,
                event=kind,
            )


class WebhookChannel:
    """The outbox's sender for webhook records. The secret is read at send time, so rotating it or
    deactivating a subscription applies to deliveries still queued."""

    name = "webhook"
    account = ACCOUNT

    def __init__(self, db: Db) -> None:
        self._db = db
        self._session: aiohttp.ClientSession | None = None

    async def initialize(self) -> None:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def register(self, app: web.Application) -> None:
        """No inbound routes: webhooks only go out."""

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            sub = await self._db.webhooks.find_one({"_id": ObjectId(str(message.meta.get("subscription")))})
        except (InvalidId, TypeError):
            sub = None
        if sub is None or not sub.get("active"):
            raise PermanentDeliveryError("the webhook subscription was deleted or deactivated")
        if self._session is None:
            raise ChannelUnavailable("the webhook sender is not running")
        body = message.text.encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Omnigate-Webhooks/1",
            "X-Omnigate-Event": str(message.meta.get("event", "")),
            "X-Omnigate-Delivery": str(message.meta.get("delivery", "")),
            "X-Omnigate-Timestamp": timestamp,
            "X-Omnigate-Signature": sign(str(sub["secret"]), timestamp, body),
        }
        return await self._post(str(sub["url"]), body, headers)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        """The one place where HTTP answers become delivery outcomes."""
        assert self._session is not None
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ChannelUnavailable(f"webhook {url}: {exc}") from exc
        if 200 <= status < 300:
            await self._db.webhooks.update_one({"url": url}, {"$set": {"last_status": status}})
            return SendResult(detail={"status": status})
        await self._db.webhooks.update_one({"url": url}, {"$set": {"last_status": status}})
        if status == 429:
            seconds = float(retry_after) if retry_after.isdigit() else 30.0
            raise RateLimited(f"webhook {url} answered 429", retry_after=seconds, platform_code=status)
        if status == 408 or status >= 500:
            raise ChannelUnavailable(f"webhook {url} answered {status}", platform_code=status)
        raise PermanentDeliveryError(f"webhook {url} answered {status}", platform_code=status)
