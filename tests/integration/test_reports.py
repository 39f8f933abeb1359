"""Reports over a seeded history of 1,200 tickets with known timings, against figures computed here
independently (business minutes counted one by one), and the incremental rollups against a rebuild."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bench.report_history import Truth, deflections, generate
from channels.fake import FakeChannel
from gateway.appkeys import BUS, TICKET_SERVICE
from tests.helpers import running_app, token
from ticket_core.messages import CustomerIdentity, InboundMessage

START = datetime(2026, 9, 27, 16, 0, tzinfo=UTC)
HOLIDAYS = [f"2026-10-0{d}" for d in range(1, 8)]  # the National Day week
CALENDAR = {
    "timezone": "Asia/Shanghai",
    "hours": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": HOLIDAYS,
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOLIDAY_DAYS = {(date.fromisoformat(d) - date(1970, 1, 1)).days for d in HOLIDAYS}


def business_minutes(a: datetime, b: datetime) -> int:
    """Minutes from a to b inside Shanghai (UTC+8, no DST) weekday 09-18 hours, holidays excluded."""
    count = 0
    for minute in range(int((a - EPOCH).total_seconds() // 60), int((b - EPOCH).total_seconds() // 60)):
        local = minute + 8 * 60
        day, of_day = divmod(local, 24 * 60)
        if (day + 3) % 7 < 5 and day not in HOLIDAY_DAYS and 9 * 60 <= of_day < 18 * 60:
            count += 1
    return count


def expected(truths: list[Truth], deflected: int) -> dict[str, Any]:
    responded = [t for t in truths if t.first_reply is not None]
    resolved = [t for t in truths if t.solved is not None]
    frt = [(t.first_reply - t.created).total_seconds() for t in responded if t.first_reply]
    frt_b = [business_minutes(t.created, t.first_reply) * 60 for t in responded if t.first_reply]
    rt = [(t.solved - t.created).total_seconds() for t in resolved if t.solved]
    rt_b = [business_minutes(t.created, t.solved) * 60 for t in resolved if t.solved]
    rated = [t.csat for t in truths if t.csat is not None]
    sla = [t for t in truths if t.with_sla]
    fcr = [t for t in resolved if t.replies == 1 and not t.reopened]
    return {
        "tickets": len(truths),
        "first_response": {
            "count": len(frt),
            "avg_seconds": sum(frt) / len(frt),
            "avg_business_seconds": sum(frt_b) / len(frt_b),
        },
        "resolution": {
            "count": len(rt),
            "avg_seconds": sum(rt) / len(rt),
            "median_seconds": statistics.median(rt),
            "avg_business_seconds": sum(rt_b) / len(rt_b),
            "median_business_seconds": statistics.median(rt_b),
        },
        "first_contact_resolution": {"count": len(fcr), "rate": len(fcr) / len(rt)},
        "reopened": sum(t.reopened for t in truths),
        "csat": {
            "count": len(rated),
            "average": sum(rated) / len(rated),
            "satisfied_rate": sum(s >= 4 for s in rated) / len(rated),
        },
        "sla": {
            "count": len(sla),
            "breached": sum(t.breached for t in sla),
            "compliance": sum(not t.breached for t in sla) / len(sla),
        },
        "deflection": {"deflections": deflected, "rate": deflected / (deflected + len(truths))},
    }


def close(actual: Any, want: Any) -> None:
    if isinstance(want, dict):
        assert set(actual) >= set(want)
        for key, value in want.items():
            close(actual[key], value)
    elif isinstance(want, float):
        assert actual == pytest.approx(want, rel=1e-12)
    else:
        assert actual == want


def local_day(at: datetime) -> str:
    return (at + timedelta(hours=8)).date().isoformat()


async def test_seeded_history_gives_the_exact_figures(settings: Any, mongo: Any) -> None:
    tickets, events, truths = generate(1200, START, spacing_minutes=37)
    deflected = deflections(300, START, spacing_minutes=140)
    await mongo.tickets.insert_many(tickets)
    await mongo.ticket_events.insert_many(events)
    await mongo.deflections.insert_many(deflected)
    async with running_app(settings) as client:
        headers = await token(client, "admin")
        assert (await client.put("/api/v1/business-hours", json=CALENDAR, headers=headers)).status == 200
        rebuilt = await client.post("/api/v1/reports/rebuild", headers=headers)
        assert (await rebuilt.json())["tickets"] == 1200
        first, last = local_day(truths[0].created), local_day(truths[-1].created)
        query = f"from={first}&to={last}"
        report = await (await client.get(f"/api/v1/reports/summary?{query}", headers=headers)).json()
        close(report["total"], expected(truths, len(deflected)))

        by_channel = await (
            await client.get(f"/api/v1/reports/summary?{query}&by=channel", headers=headers)
        ).json()
        for item in by_channel["items"]:
            mine = [t for t in truths if t.channel == item["key"]]
            mine_deflected = len([d for d in deflected if d["channel"] == item["key"]])
            close(item, expected(mine, mine_deflected))
        by_agent = await (
            await client.get(f"/api/v1/reports/summary?{query}&by=agent", headers=headers)
        ).json()
        ann = next(i for i in by_agent["items"] if i["key"] == "ann")
        want = expected([t for t in truths if t.agent == "ann"], 0)
        close(ann["resolution"], want["resolution"])
        close(ann["csat"], want["csat"])
        by_day = await (await client.get(f"/api/v1/reports/summary?{query}&by=day", headers=headers)).json()
        assert sum(i["tickets"] for i in by_day["items"]) == 1200
        day_two = by_day["items"][1]
        assert day_two["tickets"] == sum(local_day(t.created) == day_two["key"] for t in truths)

        backlog = await (await client.get("/api/v1/reports/backlog?by=team", headers=headers)).json()
        open_truths = [t for t in truths if t.status in ("new", "open", "pending", "on_hold")]
        assert backlog["total"]["open"] == len(open_truths)
        assert {i["key"]: i["open"] for i in backlog["items"]} == {
            team: sum(t.team == team for t in open_truths) for team in ("support", "vip")
        }

        res = await client.get(f"/api/v1/reports/summary?{query}&by=category&format=csv", headers=headers)
        assert res.status == 200 and res.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await res.text())))
        assert rows[0]["key"] == "total" and int(rows[0]["tickets"]) == 1200
        assert {r["key"] for r in rows[1:]} == {"billing", "hardware", "account", "shipping"}

        for bad in ("by=colour", "from=yesterday", "format=xml", f"from={last}&to={first}"):
            res = await client.get(f"/api/v1/reports/summary?{bad}", headers=headers)
            assert res.status == 422, bad


async def test_incremental_rollups_equal_a_rebuild_across_a_reopening(settings: Any, mongo: Any) -> None:
    now = [datetime(2026, 11, 2, 1, 0, tzinfo=UTC)]
    async with running_app(settings, channels=[FakeChannel()]) as client:
        client.app[TICKET_SERVICE].clock = lambda: now[0]
        headers = await token(client, "agent")
        numbers = []
        for i in range(6):
            msg = InboundMessage(
                channel="fake",
                account="main",
                external_id="1",
                dedup_key=f"fake:r{i}:1",
                identity=CustomerIdentity("fake", "main", f"r{i}"),
                conversation_key=f"fake:main:r{i}",
                text="人工",
                locale="zh-CN",
                meta={"reply_to": f"r{i}"},
            )
            accepted = await client.app[BUS].publish(msg)
            numbers.append((await client.app[BUS].wait_result(accepted.record_id, 10) or {})["ticket_number"])
        for i, number in enumerate(numbers):
            now[0] += timedelta(minutes=10 + i)
            await client.post(f"/api/v1/tickets/{number}/replies", json={"text": "hi"}, headers=headers)
            if i % 2 == 0:
                now[0] += timedelta(minutes=30)
                await client.patch(f"/api/v1/tickets/{number}", json={"status": "solved"}, headers=headers)
        # One reopened and solved again: it counts once, with its final resolution time, and not as FCR.
        now[0] += timedelta(minutes=5)
        await client.patch(f"/api/v1/tickets/{numbers[0]}", json={"status": "open"}, headers=headers)
        now[0] += timedelta(minutes=5)
        await client.patch(f"/api/v1/tickets/{numbers[0]}", json={"status": "solved"}, headers=headers)
        url = "/api/v1/reports/summary?from=2026-11-01&to=2026-11-03"
        live = await (await client.get(url, headers=headers)).json()
        admin = await token(client, "admin")
        await client.post("/api/v1/reports/rebuild", headers=admin)
        again = await (await client.get(url, headers=headers)).json()
        assert live == again
        total = live["total"]
        assert (
            total["tickets"],
            total["resolution"]["count"],
            total["first_contact_resolution"]["count"],
        ) == (6, 3, 2)
        assert total["reopened"] == 1 and total["first_response"]["count"] == 6
        docs = await mongo.report_rollups.find({"kind": "backlog", "dim": "all"}).to_list()
        assert sum(v for d in docs for v in d["open"].values()) == 3
