"""SLA with a controllable clock, on two gateway instances sharing one database."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from channels.fake import FakeChannel
from channels.settings import EmailMailbox
from gateway.app import create_app
from gateway.appkeys import OPERATIONS, TICKET_SERVICE
from tests.helpers import eventually, smtp_server, ticket_from_fake, token

FRIDAY = datetime(2026, 11, 6, 16, 30, tzinfo=UTC)
WEEKDAYS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
POLICY = {
    "name": "standard",
    "targets": {"normal": {"first_response": 60, "resolution": 240}},
    "calendar": {"timezone": "UTC", "hours": WEEKDAYS, "holidays": ["2026-11-09"]},  # Monday off
    "warn_before_minutes": 15,
    "still_on_it_minutes": 180,
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


async def _count(mongo: Any, kind: str) -> int:
    return int(await mongo.ticket_events.count_documents({"type": kind}))


async def test_due_times_pause_warning_and_breach_once_with_two_instances(
    make_settings: Any, mongo: Any
) -> None:
    clock = Clock(FRIDAY)
    async with smtp_server() as (port, smtp), AsyncExitStack() as stack:
        box = EmailMailbox(
            name="support",
            address="support@example.com",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
        )
        settings = make_settings(email_mailboxes=(box,))
        fakes = [FakeChannel(), FakeChannel()]
        clients = []
        for fake in fakes:
            client = await stack.enter_async_context(
                TestClient(TestServer(create_app(settings, channels=[fake])))
            )
            client.app[TICKET_SERVICE].clock = clock
            clients.append(client)
        one, two = clients
        headers = await token(one, "admin")
        assert (await one.post("/api/v1/sla-policies", json=POLICY, headers=headers)).status == 201
        await one.post(
            "/api/v1/teams",
            json={"name": "support", "strategy": "least_open", "lead": "lead"},
            headers=headers,
        )
        for name in ("ann", "lead"):
            agent = {
                "name": name,
                "teams": ["support"],
                "online": name == "ann",
                "email": f"{name}@example.com",
            }
            await one.post("/api/v1/agents", json=agent, headers=headers)
        await one.post("/api/v1/routing-rules", json={"name": "all", "team": "support"}, headers=headers)

        number = await ticket_from_fake(one, "u1")
        ticket = await mongo.tickets.find_one({"number": number})
        assert ticket["assignee"] == "ann"
        clocks = ticket["sla"]["clocks"]
        # Friday 16:30 + 60 business minutes: 30 on Friday, the weekend and Monday (a holiday) skipped.
        assert clocks["first_response"]["due"] == at(10, 9, 30)
        assert clocks["resolution"]["due"] == at(10, 12, 30)

        async def sweep_both() -> None:
            for client in clients:
                ops = client.app[OPERATIONS]
                await ops.scheduler.run_once()
                await ops.sla.sweep()  # even without the lease: exactly once rests on the event ids

        clock.now = at(10, 9, 10)
        await sweep_both()
        assert await _count(mongo, "sla_warning") == 0
        clock.now = at(10, 9, 16)
        await sweep_both()
        await sweep_both()
        assert await _count(mongo, "sla_warning") == 1
        clock.now = at(10, 9, 31)
        await sweep_both()
        await sweep_both()
        assert await _count(mongo, "sla_breached") == 1
        breach = await mongo.ticket_events.find_one({"type": "sla_breached"})
        assert breach["data"]["metric"] == "first_response"

        # Pending pauses the resolution clock; open resumes it with the business time that was left.
        clock.now = at(10, 10, 0)
        patch = await two.patch(f"/api/v1/tickets/{number}", json={"status": "pending"}, headers=headers)
        assert patch.status == 200
        paused = (await mongo.tickets.find_one({"number": number}))["sla"]["clocks"]["resolution"]
        assert paused["due"] is None and paused["remaining_seconds"] == 150 * 60
        clock.now = at(11, 16, 0)  # Wednesday 16:00: 60 minutes today, 90 on Thursday
        await sweep_both()
        assert await _count(mongo, "sla_breached") == 1  # nothing runs while paused
        await two.patch(f"/api/v1/tickets/{number}", json={"status": "open"}, headers=headers)
        resumed = (await mongo.tickets.find_one({"number": number}))["sla"]["clocks"]["resolution"]
        assert resumed["due"] == at(12, 10, 30)

        # Escalation mail: the lead and the assignee hear of the breach exactly once each.
        async def breach_mails() -> list[Any]:
            found = [
                m
                for m in smtp.messages
                if "SLA" in str(m["Subject"]) and "breach" in str(m["Subject"]).lower()
            ]
            return found if len(found) >= 2 else []

        mails = await eventually(breach_mails)
        assert sorted(str(m["To"]) for m in mails) == ["ann@example.com", "lead@example.com"]
        warn = [m for m in smtp.messages if "warning" in str(m["Subject"]).lower()]
        assert [str(m["To"]) for m in warn] == ["ann@example.com"]
        records = await mongo.outbox.count_documents({"event": "sla_breached"})
        assert records == 2

        # The proactive "still on it" notice reaches the customer once, on the ticket's channel.
        clock.now = at(12, 12, 0)
        await sweep_both()
        await sweep_both()

        async def still() -> list[Any]:
            return [m for f in fakes for m in f.sent if m.meta.get("event") == "still_on_it"]

        assert len(await eventually(still)) == 1
        assert await _count(mongo, "sla_still_on_it") == 1
        assert timedelta(0) <= clock.now - at(12, 12)
