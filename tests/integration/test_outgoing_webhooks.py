"""Outgoing webhooks: ticket events reach a subscriber, signed with HMAC-SHA256, through the outbox
(a failing receiver is retried)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.webhooks import sign
from tests.helpers import eventually, running_app, token

FORM = {"subject": "Printer jams", "description": "It jams on page two.", "email": "c@example.com"}


async def test_ticket_events_are_signed_and_retried(settings: Any, mongo: Any) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    failures = {"left": 1}

    async def receive(request: web.Request) -> web.Response:
        if failures["left"]:
            failures["left"] -= 1
            return web.Response(status=503)  # the first delivery fails: the outbox retries
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    async with TestServer(receiver) as hook, running_app(settings) as client:
        admin = await token(client, "admin")
        made = await client.post(
            "/api/v1/webhooks",
            json={"url": str(hook.make_url("/hook")), "events": ["ticket.created", "ticket.status_changed"]},
            headers=admin,
        )
        assert made.status == 201
        secret = (await made.json())["secret"]
        listed = await (await client.get("/api/v1/webhooks", headers=admin)).json()
        assert "secret" not in listed["items"][0]
        await client.post("/forms/support", json=FORM)
        number = (await mongo.tickets.find_one({}))["number"]
        await client.patch(f"/api/v1/tickets/{number}", json={"status": "pending"}, headers=admin)
        await client.post(
            f"/api/v1/tickets/{number}/replies", json={"text": "note", "type": "internal"}, headers=admin
        )
        await eventually(lambda: _count(received, 2), timeout=15)
        types = []
        for headers, body in received:
            assert headers["X-Omnigate-Signature"] == sign(secret, headers["X-Omnigate-Timestamp"], body)
            payload = json.loads(body)
            assert payload["ticket"]["number"] == number and payload["id"] == headers["X-Omnigate-Delivery"]
            types.append(payload["type"])
        assert sorted(types) == ["ticket.created", "ticket.status_changed"]  # notes were not subscribed

        async def all_sent() -> list[Any]:
            records = [d async for d in mongo.outbox.find({"channel": "webhook"})]
            return records if len(records) == 2 and all(r["state"] == "sent" for r in records) else []

        records = await eventually(all_sent)  # the record is marked sent just after the receiver answers
        assert any(r["attempts"] == 2 for r in records)
        assert await mongo.audit.find_one({"action": "webhook.create", "actor": "test-admin"})


async def _count(items: list[Any], n: int) -> bool:
    return len(items) >= n
