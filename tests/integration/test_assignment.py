"""Routing through the running app: rules, teams and agents by REST, tickets assigned on creation."""

from __future__ import annotations

from collections import Counter
from typing import Any

from channels.fake import FakeChannel
from tests.helpers import eventually, running_app, ticket_from_fake, token


async def _setup(client: Any, headers: dict[str, str], strategy: str) -> None:
    for team in (
        {"name": "support", "strategy": strategy, "lead": "lead"},
        {"name": "vip", "strategy": "manual"},
    ):
        assert (await client.post("/api/v1/teams", json=team, headers=headers)).status == 201
    agents = [
        {"name": "ann", "teams": ["support"], "skills": ["billing"], "online": True, "capacity": 2},
        {"name": "bea", "teams": ["support"], "skills": ["billing", "hardware"], "online": True},
        {"name": "cid", "teams": ["support"], "skills": ["hardware"], "online": False},
        {"name": "lead", "teams": ["support"], "skills": [], "online": True, "email": "lead@example.com"},
    ]
    for agent in agents:
        assert (await client.post("/api/v1/agents", json=agent, headers=headers)).status == 201
    rule = {"name": "all", "team": "support", "skill": "billing", "conditions": {"channels": ["fake"]}}
    assert (await client.post("/api/v1/routing-rules", json=rule, headers=headers)).status == 201


async def test_least_open_respects_capacity_and_dry_run_equals_live(settings: Any, mongo: Any) -> None:
    fake = FakeChannel()
    async with running_app(settings, channels=[fake]) as client:
        headers = await token(client, "admin")
        await _setup(client, headers, "least_open")
        picks = []
        for i in range(6):
            dry = await client.post(
                "/api/v1/routing-rules/dry-run", json={"channel": "fake", "subject": "x"}, headers=headers
            )
            number = await ticket_from_fake(client, f"u{i}")
            ticket = await (await client.get(f"/api/v1/tickets/{number}", headers=headers)).json()
            assert (await dry.json())["assignee"] == ticket["assignee"]
            assert ticket["team"] == "support"
            assert next(e for e in ticket["events"] if e["type"] == "assigned")["data"]["rule"] == "all"
            picks.append(ticket["assignee"])
        # ann takes 2 (her capacity), bea the rest; cid is off-line and lacks the skill; lead lacks it.
        assert Counter(picks) == {"ann": 2, "bea": 4}
        agents = await (await client.get("/api/v1/agents", headers=headers)).json()
        assert {a["name"]: a["open_tickets"] for a in agents["items"]}["ann"] == 2

        # The customer hears about the assignment once, on the channel they used.
        async def assigned() -> bool:
            return len([m for m in fake.sent if m.meta.get("event") == "assigned"]) >= 6

        await eventually(assigned)
        assert "ann" in next(m.text for m in fake.sent if m.meta.get("event") == "assigned")


async def test_round_robin_is_even_and_replay_changes_nothing(settings: Any, mongo: Any) -> None:
    async with running_app(settings, channels=[FakeChannel()]) as client:
        headers = await token(client, "admin")
        await _setup(client, headers, "round_robin")
        await client.patch("/api/v1/agents/ann", json={"capacity": None}, headers=headers)
        numbers = [await ticket_from_fake(client, f"r{i}") for i in range(8)]
        tickets = [await (await client.get(f"/api/v1/tickets/{n}", headers=headers)).json() for n in numbers]
        assert Counter(t["assignee"] for t in tickets) == {"ann": 4, "bea": 4}
        before = await mongo.tickets.find({}, {"assignee": 1, "team": 1}).to_list()

        proposed = [{"name": "to-vip", "team": "vip", "conditions": {}}]
        res = await client.post("/api/v1/routing-rules/replay", json={"rules": proposed}, headers=headers)
        body = await res.json()
        assert res.status == 200 and body["count"] == 8 and body["changed"] == 8
        assert body["by_team"] == {"vip": 8}
        same = await (await client.post("/api/v1/routing-rules/replay", json={}, headers=headers)).json()
        assert same["changed"] == 0  # the saved rules replayed from a fresh state do what live did
        assert await mongo.tickets.find({}, {"assignee": 1, "team": 1}).to_list() == before

        bad = await client.post("/api/v1/routing-rules", json={"team": 3}, headers=headers)
        assert bad.status == 422 and (await bad.json())["error"]["code"] == "invalid_fields"
        bad = await client.post("/api/v1/routing-rules/replay", json={"from": "yesterday"}, headers=headers)
        assert bad.status == 422
