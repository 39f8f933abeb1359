"""Routing rules, teams and agents, and the pure decision of who gets a ticket.

A rule's conditions all have to hold (each list means "any of these"); the first enabled rule in
`order` picks a team and optionally a skill. The team's strategy picks an agent among its on-line
members that have the skill and room under their capacity: least open tickets, round robin, or
nobody (manual: the team queue). No I/O here, so the live path, the dry run and the replay share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ticket_core.errors import InvalidInput
from ticket_core.model import PRIORITIES

Strategy = Literal["least_open", "round_robin", "manual"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


@dataclass(frozen=True)
class RoutingContext:
    """What a rule may look at: the ticket and its customer."""

    subject: str = ""
    description: str = ""
    category: str | None = None
    channel: str = ""
    priority: str = "normal"
    customer_tags: tuple[str, ...] = ()
    tier: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Conditions:
    categories: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()  # any of them in the subject or description, case-insensitive
    priorities: tuple[str, ...] = ()
    customer_tags: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)  # form field -> required value

    def match(self, ctx: RoutingContext) -> bool:
        if self.categories and (ctx.category or "") not in self.categories:
            return False
        if self.channels and ctx.channel not in self.channels:
            return False
        if self.priorities and ctx.priority not in self.priorities:
            return False
        if self.tiers and (ctx.tier or "") not in self.tiers:
            return False
        if self.customer_tags and not set(self.customer_tags) & set(ctx.customer_tags):
            return False
        if self.keywords:
            text = f"{ctx.subject}\n{ctx.description}".casefold()
            if not any(k.casefold() in text for k in self.keywords):
                return False
        return all(str(ctx.fields.get(k, "")) == v for k, v in self.fields.items())


@dataclass(frozen=True)
class RoutingRule:
    id: str
    name: str
    team: str
    conditions: Conditions = field(default_factory=Conditions)
    skill: str | None = None
    order: int = 0
    enabled: bool = True

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> RoutingRule:
        name, team = doc.get("name"), doc.get("team")
        problems = {}
        if not isinstance(name, str) or not name.strip():
            problems["name"] = "is required"
        if not isinstance(team, str) or not team.strip():
            problems["team"] = "is required"
        raw = doc.get("conditions") or {}
        if not isinstance(raw, Mapping):
            problems["conditions"] = "must be an object"
            raw = {}
        unknown = set(raw) - {
            "categories",
            "channels",
            "keywords",
            "priorities",
            "customer_tags",
            "tiers",
            "fields",
        }
        if unknown:
            problems["conditions"] = f"unknown condition(s): {', '.join(sorted(unknown))}"
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("categories", "channels", "keywords", "priorities", "customer_tags", "tiers"):
            value = raw.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                problems[f"conditions.{key}"] = "must be a list of strings"
                value = []
            lists[key] = tuple(value)
        if any(p not in PRIORITIES for p in lists["priorities"]):
            problems["conditions.priorities"] = f"must be among {', '.join(PRIORITIES)}"
        fields_ = raw.get("fields") or {}
        if not isinstance(fields_, Mapping) or not all(isinstance(v, str) for v in fields_.values()):
            problems["conditions.fields"] = "must map field names to strings"
            fields_ = {}
        skill = doc.get("skill")
        if skill is not None and not isinstance(skill, str):
            problems["skill"] = "must be a string"
        order = doc.get("order", 0)
        if not isinstance(order, int) or isinstance(order, bool):
            problems["order"] = "must be an integer"
        if problems:
            raise InvalidInput("invalid routing rule", code="invalid_fields", fields=problems)
        assert isinstance(name, str) and isinstance(team, str)
        return cls(
            id=str(doc.get("_id", doc.get("id", ""))),
            name=name.strip(),
            team=team.strip(),
            conditions=Conditions(**lists, fields=dict(fields_)),
            skill=skill or None,
            order=order,
            enabled=bool(doc.get("enabled", True)),
        )

    def to_doc(self) -> dict[str, Any]:
        c = self.conditions
        return {
            "name": self.name,
            "team": self.team,
            "skill": self.skill,
            "order": self.order,
            "enabled": self.enabled,
            "conditions": {
                "categories": list(c.categories),
                "channels": list(c.channels),
                "keywords": list(c.keywords),
                "priorities": list(c.priorities),
                "customer_tags": list(c.customer_tags),
                "tiers": list(c.tiers),
                "fields": dict(c.fields),
            },
        }


@dataclass(frozen=True)
class Team:
    name: str
    strategy: str = "least_open"
    lead: str | None = None  # agent name: escalations and low ratings go to them

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Team:
        name, strategy, lead = doc.get("name"), doc.get("strategy", "least_open"), doc.get("lead")
        problems = {}
        if not isinstance(name, str) or not name.strip():
            problems["name"] = "is required"
        if strategy not in STRATEGIES:
            problems["strategy"] = f"must be one of {', '.join(STRATEGIES)}"
        if lead is not None and not isinstance(lead, str):
            problems["lead"] = "must be an agent name"
        if problems:
            raise InvalidInput("invalid team", code="invalid_fields", fields=problems)
        assert isinstance(name, str)
        return cls(name.strip(), str(strategy), lead or None)

    def to_doc(self) -> dict[str, Any]:
        return {"name": self.name, "strategy": self.strategy, "lead": self.lead}


@dataclass(frozen=True)
class AgentProfile:
    """The routing view of an `agents` document (shared with the Telegram relay)."""

    name: str
    teams: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    online: bool = False
    capacity: int | None = None  # open tickets at most; None: no limit
    email: str | None = None
    telegram_user_id: int | None = None
    username: str | None = None
    locale: str = "en"  # the console's language for this account, also used for their notices

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> AgentProfile:
        capacity = doc.get("capacity")
        tid = doc.get("telegram_user_id")
        return cls(
            name=str(doc.get("name") or ""),
            teams=tuple(doc.get("teams") or ()),
            skills=tuple(doc.get("skills") or ()),
            online=bool(doc.get("online", False)),
            capacity=int(capacity) if isinstance(capacity, int) and not isinstance(capacity, bool) else None,
            email=doc.get("email"),
            telegram_user_id=int(tid)
            if isinstance(tid, int | str) and str(tid).lstrip("-").isdigit()
            else None,
            username=doc.get("username"),
            locale=str(doc.get("locale") or "en"),
        )


@dataclass(frozen=True)
class Decision:
    team: str | None = None
    assignee: str | None = None
    rule: str | None = None
    skill: str | None = None
    strategy: str = "manual"
    reason: str = ""
    candidates: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "assignee": self.assignee,
            "rule": self.rule,
            "skill": self.skill,
            "strategy": self.strategy,
            "reason": self.reason,
            "candidates": list(self.candidates),
        }


def first_rule(rules: Sequence[RoutingRule], ctx: RoutingContext) -> RoutingRule | None:
    for rule in sorted(rules, key=lambda r: (r.order, r.name)):
        if rule.enabled and rule.conditions.match(ctx):
            return rule
    return None


def eligible(
    agents: Sequence[AgentProfile], team: str, skill: str | None, open_counts: Mapping[str, int]
) -> list[AgentProfile]:
    """On-line members of the team with the skill and room under their capacity, by name."""
    out = [
        a
        for a in agents
        if team in a.teams
        and a.online
        and (skill is None or skill in a.skills)
        and (a.capacity is None or open_counts.get(a.name, 0) < a.capacity)
    ]
    return sorted(out, key=lambda a: a.name)


def decide(
    ctx: RoutingContext,
    rules: Sequence[RoutingRule],
    teams: Mapping[str, Team],
    agents: Sequence[AgentProfile],
    open_counts: Mapping[str, int],
    round_robin_seq: int,
) -> Decision:
    """`round_robin_seq` is the team's counter value this assignment takes (the caller advances it)."""
    rule = first_rule(rules, ctx)
    if rule is None:
        return Decision(reason="no rule matched")
    team = teams.get(rule.team)
    strategy = team.strategy if team else "manual"
    base = Decision(team=rule.team, rule=rule.name, skill=rule.skill, strategy=strategy)
    if team is None:
        return _with(base, reason=f"team {rule.team!r} does not exist: left unassigned")
    if strategy == "manual":
        return _with(base, reason="the team assigns by hand")
    pool = eligible(agents, rule.team, rule.skill, open_counts)
    names = tuple(a.name for a in pool)
    if not pool:
        return _with(base, reason="no on-line agent with the skill and free capacity", candidates=names)
    if strategy == "round_robin":
        chosen = pool[round_robin_seq % len(pool)]
    else:
        chosen = min(pool, key=lambda a: (open_counts.get(a.name, 0), a.name))
    return _with(base, assignee=chosen.name, reason=f"{strategy} among {len(pool)}", candidates=names)


def _with(decision: Decision, **changes: Any) -> Decision:
    from dataclasses import replace

    return replace(decision, **changes)
