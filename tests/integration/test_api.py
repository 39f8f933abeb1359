from __future__ import annotations

from typing import Any

from channels.fake import FakeChannel
from gateway.appkeys import BUS
from tests.helpers import eventually, running_app, token
from ticket_core.messages import CustomerIdentity, InboundMessage

FORM = {"subject": "Router keeps rebooting", "description": "Every hour", "email": "chen@163.com"}


async def _ticket(client: Any, **extra: str) -> str:
    res = await client.post("/forms/support", json={**FORM, **extra})
    return str((await res.json())["ticket"]["number"])


async def test_auth_is_required_and_roles_are_enforced(settings: Any) -> None:
    async with running_app(settings) as client:
        number = await _ticket(client)
        res = await client.get("/api/v1/tickets")
        assert res.status == 401 and (await res.json())["error"]["code"] == "unauthorized"
        res = await client.get("/api/v1/tickets", headers={"Authorization": "Bearer og_wrong"})
        assert res.status == 401
        viewer = await token(client, "viewer")
        assert (await client.get("/api/v1/tickets", headers=viewer)).status == 200
        res = await client.patch(f"/api/v1/tickets/{number}", json={"status": "open"}, headers=viewer)
        assert res.status == 403
        assert (await client.get("/api/v1/openapi.json")).status == 200


async def test_list_filter_paginate_and_read_with_events(settings: Any) -> None:
    async with running_app(settings) as client:
        numbers = [await _ticket(client, subject=f"problem {i}") for i in range(5)]
        headers = await token(client)
        page = await (await client.get("/api/v1/tickets?limit=2", headers=headers)).json()
        assert [t["number"] for t in page["items"]] == numbers[::-1][:2] and page["next"]
        seen = [t["number"] for t in page["items"]]
        while page["next"]:
            page = await (
                await client.get(f"/api/v1/tickets?limit=2&cursor={page['next']}", headers=headers)
            ).json()
            seen += [t["number"] for t in page["items"]]
        assert seen == numbers[::-1]
        res = await client.patch(
            f"/api/v1/tickets/{numbers[0]}",
            json={"status": "pending", "priority": "high", "tags": ["vip", "router"]},
            headers=headers,
        )
        body = await res.json()
        assert res.status == 200 and body["status"] == "pending" and body["tags"] == ["router", "vip"]
        pending = await (await client.get("/api/v1/tickets?status=pending", headers=headers)).json()
        assert [t["number"] for t in pending["items"]] == [numbers[0]]
        by_channel = await (
            await client.get("/api/v1/tickets?channel=webform&limit=10", headers=headers)
        ).json()
        assert len(by_channel["items"]) == 5
        requester = pending["items"][0]["requester"]
        mine = await (await client.get(f"/api/v1/tickets?requester={requester}", headers=headers)).json()
        assert len(mine["items"]) == 5  # one customer, same email
        detail = await (await client.get(f"/api/v1/tickets/{numbers[0]}", headers=headers)).json()
        assert [e["type"] for e in detail["events"]] == ["created", "updated", "status_changed"]
        assert detail["events"][1]["data"]["changes"]["priority"] == ["normal", "high"]


async def test_replies_notes_and_errors(settings: Any, mongo: Any) -> None:
    fake = FakeChannel()
    async with running_app(settings, channels=[fake]) as client:
        msg = InboundMessage(
            channel="fake",
            account="main",
            external_id="m1",
            dedup_key="fake:m1",
            identity=CustomerIdentity("fake", "main", "user-9"),
            conversation_key="fake:user-9",
            text="My kettle leaks",
        )
        accepted = await client.app[BUS].publish(msg)
        number = (await client.app[BUS].wait_result(accepted.record_id, 10) or {})["ticket_number"]
        headers = await token(client, "agent")
        res = await client.post(
            f"/api/v1/tickets/{number}/replies", json={"text": "Please send a photo"}, headers=headers
        )
        assert res.status == 201
        res = await client.post(
            f"/api/v1/tickets/{number}/replies",
            json={"text": "likely a seal", "type": "internal"},
            headers=headers,
        )
        assert res.status == 201
        await eventually(lambda: _sent(fake, 2), timeout=10)
        texts = [m.text for m in fake.sent]
        assert any("Please send a photo" in t for t in texts)
        assert not any("likely a seal" in t for t in texts)  # internal notes never reach the customer
        assert all(m.recipient == "user-9" for m in fake.sent)
        errors = [
            (
                await client.patch(f"/api/v1/tickets/{number}", json={"status": "closed"}, headers=headers),
                409,
            ),
            (await client.patch(f"/api/v1/tickets/{number}", json={"status": "done"}, headers=headers), 400),
            (await client.patch(f"/api/v1/tickets/{number}", json={"colour": "red"}, headers=headers), 422),
            (await client.patch(f"/api/v1/tickets/{number}", data=b"{", headers=headers), 400),
            (await client.post(f"/api/v1/tickets/{number}/replies", json={"text": ""}, headers=headers), 422),
            (await client.get("/api/v1/tickets/T-999999", headers=headers), 404),
            (await client.get("/api/v1/tickets?limit=0", headers=headers), 400),
            (await client.get("/api/v1/tickets?cursor=zzz", headers=headers), 404),
            (await client.get("/api/v1/tickets?bogus=1", headers=headers), 400),
            (await client.get("/api/v1/nothing", headers=headers), 404),
            (await client.delete(f"/api/v1/tickets/{number}", headers=headers), 405),
        ]
        for res, status in errors:
            body = await res.json()
            assert res.status == status, (res.url, res.status, body)
            assert body["error"]["code"] and body["error"]["message"]


async def _sent(fake: FakeChannel, n: int) -> bool:
    return len(fake.sent) >= n


async def test_health_metrics_and_openapi(settings: Any) -> None:
    async with running_app(settings) as client:
        health = await (await client.get("/healthz")).json()
        assert health == {"status": "ok", "database": True}
        await _ticket(client)
        metrics = await (await client.get("/metrics")).text()
        assert 'omnigate_inbox_messages_total{outcome="published"} 1' in metrics
        assert "omnigate_database_up 1" in metrics
        assert 'omnigate_queue_oldest_age_seconds{queue="inbox"}' in metrics
        assert 'omnigate_outbox_records{state="dead"} 0' in metrics
        res = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
        assert res.headers["X-Request-Id"] == "abc-123"
        assert len((await client.get("/nope")).headers["X-Request-Id"]) == 16  # made when none is given
        doc = await (await client.get("/api/v1/openapi.json")).json()
        assert doc["openapi"].startswith("3.")
        for path in ("/api/v1/tickets", "/api/v1/tickets/{number}", "/api/v1/tickets/{number}/replies"):
            assert path in doc["paths"]
