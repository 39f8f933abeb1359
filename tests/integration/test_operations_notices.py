"""Customer notices of ticket operations: one per status change on the origin channel, switches, quiet
hours, the rating link and page, reply ratings, and the low-rating follow-up."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.fake import FakeChannel
from channels.settings import EmailMailbox
from gateway.appkeys import BUS, TICKET_SERVICE
from tests.helpers import eventually, running_app, smtp_server, token
from ticket_core.messages import CustomerIdentity, InboundMessage

FORM = {"subject": "Printer jams", "description": "Paper jams on every page", "email": "li@example.com"}


def _mailbox(port: int) -> EmailMailbox:
    return EmailMailbox(
        name="support",
        address="support@example.com",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
    )


def _text(mail: Any) -> str:
    return str(mail.get_body(preferencelist=("plain",)).get_content())


def _message(user: str, text: str, n: int = 1) -> InboundMessage:
    return InboundMessage(
        channel="fake",
        account="main",
        external_id=str(n),
        dedup_key=f"fake:{user}:{n}",
        identity=CustomerIdentity("fake", "main", user),
        conversation_key=f"fake:main:{user}",
        text=text,
        locale="zh-CN",
        meta={"reply_to": user},
    )


async def _publish(client: Any, msg: InboundMessage) -> dict[str, Any]:
    accepted = await client.app[BUS].publish(msg)
    result = await client.app[BUS].wait_result(accepted.record_id, 10)
    assert result is not None
    return dict(result)


async def test_web_form_customer_gets_one_mail_per_status_change_and_rates_on_the_page(
    make_settings: Any, mongo: Any
) -> None:
    async with smtp_server() as (port, smtp):
        async with running_app(make_settings(email_mailboxes=(_mailbox(port),))) as client:
            headers = await token(client, "admin")
            await client.post("/api/v1/teams", json={"name": "support", "lead": "lead"}, headers=headers)
            await client.post(
                "/api/v1/agents", json={"name": "lead", "email": "lead@example.com"}, headers=headers
            )
            await client.post(
                "/api/v1/routing-rules",
                json={"name": "forms", "team": "support", "conditions": {"channels": ["webform"]}},
                headers=headers,
            )
            number = (await (await client.post("/forms/support", json=FORM)).json())["ticket"]["number"]
            for status in ("open", "pending", "solved"):
                res = await client.patch(
                    f"/api/v1/tickets/{number}", json={"status": status}, headers=headers
                )
                assert res.status == 200
            note = {"text": "internal only", "type": "internal"}
            assert (
                await client.post(f"/api/v1/tickets/{number}/replies", json=note, headers=headers)
            ).status == 201

            async def customer_mails() -> list[Any]:
                found = [m for m in smtp.messages if str(m["To"]) == "li@example.com"]
                return found if len(found) >= 5 else []

            mails = await eventually(customer_mails)
            events = [
                d["event"] async for d in mongo.outbox.find({"recipient": "li@example.com"}).sort("_id", 1)
            ]
            # created, assigned to the team, then exactly one per status change, none for the note
            assert events == [
                "ticket_created",
                "assigned",
                "status_changed",
                "status_changed",
                "status_changed",
            ]
            assert not any("internal only" in _text(m) for m in mails)
            solved = _text(mails[-1])
            link = re.search(r"http://\S+/csat/(\S+)", solved)
            assert link is not None, solved
            page = await client.get(f"/csat/{link.group(1)}")
            assert page.status == 200 and 'name="score"' in (await page.text()).replace("'", '"')
            assert (await client.get("/csat/forged.token")).status == 404
            bad = await client.post(f"/csat/{link.group(1)}", data={"score": "9"})
            assert bad.status == 422 and (await bad.json())["error"]["code"] == "invalid_fields"
            done = await client.post(f"/csat/{link.group(1)}", data={"score": "2", "comment": "too slow"})
            assert done.status == 200 and "2/5" in await done.text()
            ticket = await mongo.tickets.find_one({"number": number})
            assert ticket["csat"]["score"] == 2 and ticket["csat"]["comment"] == "too slow"
            assert await mongo.ticket_events.count_documents({"type": "csat", "number": number}) == 1
            tasks = await (await client.get("/api/v1/tasks?state=open", headers=headers)).json()
            assert [(t["number"], t["assignee"], t["score"]) for t in tasks["items"]] == [(number, "lead", 2)]

            async def lead_mail() -> list[Any]:
                return [
                    m
                    for m in smtp.messages
                    if str(m["To"]) == "lead@example.com" and "2/5" in str(m["Subject"])
                ]

            assert len(await eventually(lead_mail)) == 1
            # A second solve (after a reopen) does not ask again.
            await client.patch(f"/api/v1/tickets/{number}", json={"status": "open"}, headers=headers)
            await client.patch(f"/api/v1/tickets/{number}", json={"status": "solved"}, headers=headers)

            # Notices of agents' actions are not capped like automatic answers: all five are delivered.
            async def solved_again() -> list[Any]:
                query = {"recipient": "li@example.com", "event": "status_changed", "state": "sent"}
                found = [d async for d in mongo.outbox.find(query).sort("_id", 1)]
                return found if len(found) >= 5 else []

            records = await eventually(solved_again, timeout=20)
            assert "/csat/" in records[2]["message"]["text"]
            assert "/csat/" not in records[-1]["message"]["text"]
            assert len([m for m in smtp.messages if str(m["To"]) == "li@example.com"]) >= 7


async def test_switches_quiet_hours_and_a_reply_rating(settings: Any, mongo: Any) -> None:
    fake = FakeChannel()
    async with running_app(settings, channels=[fake]) as client:
        headers = await token(client, "admin")
        now = datetime.now(UTC)
        client.app[TICKET_SERVICE].clock = lambda: now
        start = (now - timedelta(hours=1)).strftime("%H:%M")
        end = (now + timedelta(hours=2)).strftime("%H:%M")
        body = {
            "quiet_hours": {"enabled": True, "start": start, "end": end, "timezone": "UTC"},
            "events": {"assigned": False},
        }
        res = await client.put("/api/v1/notification-settings", json=body, headers=headers)
        assert res.status == 200 and (await res.json())["quiet_hours"]["enabled"] is True
        bad = await client.put(
            "/api/v1/notification-settings", json={"events": {"nope": True}}, headers=headers
        )
        assert bad.status == 422

        number = str((await _publish(client, _message("q1", "人工")))["ticket_number"])
        await client.patch(f"/api/v1/tickets/{number}", json={"status": "open"}, headers=headers)
        await client.post(f"/api/v1/tickets/{number}/replies", json={"text": "在查了"}, headers=headers)
        replied = datetime.now(UTC)
        records = {d["event"]: d async for d in mongo.outbox.find({"ticket_id": {"$exists": True}})}
        # The status notice waits for the end of quiet hours (`end`, to the minute; the database keeps
        # milliseconds); the agent's reply does not wait.
        quiet_end = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
        held = records["status_changed"]["next_attempt_at"]
        assert quiet_end - timedelta(seconds=1) < held < quiet_end + timedelta(seconds=30), (quiet_end, held)
        assert records["public_reply"]["next_attempt_at"] <= replied

        await client.put(
            "/api/v1/notification-settings",
            json={"quiet_hours": {"enabled": False}, "events": {"solved": False}},
            headers=headers,
        )
        await client.patch(f"/api/v1/tickets/{number}", json={"status": "solved"}, headers=headers)
        assert await mongo.outbox.count_documents({"event": "status_changed"}) == 1  # resolution switched off

        # Switched back on, a fresh ticket's solved notice asks for a rating; "4 很好" is one.
        await client.put("/api/v1/notification-settings", json={"events": {"solved": True}}, headers=headers)
        other = str((await _publish(client, _message("q2", "人工")))["ticket_number"])
        await client.patch(f"/api/v1/tickets/{other}", json={"status": "solved"}, headers=headers)

        async def asked() -> list[Any]:
            return [m for m in fake.sent if m.ticket_number == other and "1-5" in m.text]

        await eventually(asked)
        result = await _publish(client, _message("q2", "4 很好", 2))
        assert result == {"csat": "recorded", "score": 4, "ticket_number": other}
        ticket = await mongo.tickets.find_one({"number": other})
        assert (ticket["status"], ticket["csat"]["score"], ticket["csat"]["comment"]) == ("solved", 4, "很好")
        assert await mongo.tasks.count_documents({}) == 0  # 4 is not low

        async def thanks() -> list[Any]:
            return [m for m in fake.sent if m.meta.get("event") == "csat_thanks"]

        assert "4/5" in (await eventually(thanks))[0].text


async def test_a_low_rating_from_the_telegram_buttons_gets_the_same_follow_up(
    settings: Any, mongo: Any
) -> None:
    from gateway.appkeys import OPERATIONS

    async with running_app(settings, channels=[FakeChannel()]) as client:
        headers = await token(client, "admin")
        await client.post("/api/v1/teams", json={"name": "support", "lead": "lead"}, headers=headers)
        await client.post("/api/v1/routing-rules", json={"name": "all", "team": "support"}, headers=headers)
        ops = client.app[OPERATIONS]
        await ops.scheduler.run_once()  # the first sweep starts the ratings watermark
        number = str((await _publish(client, _message("t1", "人工")))["ticket_number"])
        await client.patch(f"/api/v1/tickets/{number}", json={"status": "solved"}, headers=headers)
        # What bots/csat.py writes for a button tap: the rating on the ticket and a csat event.
        rated_at = datetime.now(UTC) + timedelta(seconds=1)
        await mongo.tickets.update_one(
            {"number": number}, {"$set": {"csat": {"score": 1, "comment": None, "at": rated_at}}}
        )
        await ops.scheduler.run_once()
        await ops.scheduler.run_once()
        tasks = await mongo.tasks.find({}).to_list()
        assert [(t["number"], t["assignee"], t["score"]) for t in tasks] == [(number, "lead", 1)]
        report = await (await client.get("/api/v1/reports/summary", headers=headers)).json()
        assert report["total"]["csat"] == {"count": 1, "average": 1.0, "satisfied_rate": 0.0}
