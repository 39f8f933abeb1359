from __future__ import annotations

from collections import Counter

import pytest

from ticket_core.routing import AgentProfile, RoutingContext, RoutingRule, Team, decide

RULES = [
    RoutingRule.from_doc(
        {"_id": "1", "name": "vip", "team": "vip", "order": 0, "conditions": {"tiers": ["vip"]}}
    ),
    RoutingRule.from_doc(
        {
            "_id": "2",
            "name": "billing",
            "team": "support",
            "skill": "billing",
            "order": 1,
            "conditions": {"categories": ["billing"]},
        }
    ),
    RoutingRule.from_doc(
        {
            "_id": "3",
            "name": "wechat-hw",
            "team": "support",
            "skill": "hardware",
            "order": 2,
            "conditions": {"channels": ["wechat"], "keywords": ["路由器", "router"]},
        }
    ),
    RoutingRule.from_doc(
        {
            "_id": "4",
            "name": "form-refund",
            "team": "support",
            "skill": "billing",
            "order": 3,
            "conditions": {"fields": {"order_type": "refund"}},
        }
    ),
    RoutingRule.from_doc({"_id": "5", "name": "rest", "team": "general", "order": 9}),
]
TEAMS = {
    "vip": Team("vip", "manual", "lead"),
    "support": Team("support", "least_open", "lead"),
    "general": Team("general", "round_robin", "lead"),
}
AGENTS = [
    AgentProfile("ann", ("support",), ("billing",), True, 2),
    AgentProfile("bea", ("support",), ("billing", "hardware"), True, None),
    AgentProfile("cid", ("support",), ("hardware",), False, None),  # off-line
    AgentProfile("g1", ("general",), (), True, None),
    AgentProfile("g2", ("general",), (), True, None),
    AgentProfile("g3", ("general",), (), True, None),
]


@pytest.mark.parametrize(
    ("ctx", "counts", "team", "agent"),
    [
        (RoutingContext(category="billing", channel="email"), {}, "support", "ann"),
        (RoutingContext(category="billing", channel="email"), {"ann": 1}, "support", "bea"),  # fewer open
        (RoutingContext(category="billing"), {"ann": 2, "bea": 5}, "support", "bea"),  # ann is full
        (RoutingContext(channel="wechat", subject="路由器坏了"), {}, "support", "bea"),  # cid is off-line
        (RoutingContext(channel="email", subject="router"), {}, "general", "g1"),  # keyword, wrong channel
        (RoutingContext(fields={"order_type": "refund"}), {"bea": 0, "ann": 1}, "support", "bea"),
        (RoutingContext(category="billing", tier="vip"), {}, "vip", None),  # manual team: queue only
        (RoutingContext(priority="low"), {}, "general", "g1"),
    ],
)
def test_matrix(ctx: RoutingContext, counts: dict[str, int], team: str, agent: str | None) -> None:
    decision = decide(ctx, RULES, TEAMS, AGENTS, counts, 0)
    assert (decision.team, decision.assignee) == (team, agent)


def test_no_eligible_agent_leaves_the_ticket_in_the_team_queue() -> None:
    decision = decide(RoutingContext(category="billing"), RULES, TEAMS, AGENTS, {"ann": 2}, 0)
    assert decision.assignee == "bea"
    offline = [a for a in AGENTS if a.name != "bea"]
    decision = decide(RoutingContext(category="billing"), RULES, TEAMS, offline, {"ann": 2}, 0)
    assert (decision.team, decision.assignee) == ("support", None)


def test_round_robin_distributes_evenly() -> None:
    picks = Counter(decide(RoutingContext(), RULES, TEAMS, AGENTS, {}, seq).assignee for seq in range(300))
    assert picks == {"g1": 100, "g2": 100, "g3": 100}


def test_a_rule_needs_a_name_and_a_team() -> None:
    from ticket_core.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        RoutingRule.from_doc({"conditions": {"colour": ["red"]}})
    assert set(err.value.fields) >= {"name", "team", "conditions"}
