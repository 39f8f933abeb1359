"""Assignment: routing rules applied to new tickets, recorded as an `assigned` event.

The decision itself is `ticket_core.routing.decide` (pure); this module feeds it from MongoDB
(`routing_rules`, `teams`, `agents`, open-ticket counts, round-robin counters in `routing_state`) and
applies it. The dry run and the replay use the same decision without writing anything.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from ticket_core.errors import NotFound
from ticket_core.events import EventDispatcher, TicketCreated, TicketUpdated
from ticket_core.model import OPEN_STATUSES, Actor, Ticket
from ticket_core.ops_events import TicketAssigned
from ticket_core.repository import Db, TicketRepository
from ticket_core.routing import AgentProfile, Decision, RoutingContext, RoutingRule, Team, decide, first_rule

MAX_REPLAY = 20_000


def _now() -> datetime:
    return datetime.now(UTC)


class MongoRoutingStore:
    """Rules, teams, agents and round-robin counters. The counters live in the tiny `routing_state`,
    where `find_one_and_update` is cheap even on the embedded database and atomic across processes."""

    def __init__(self, db: Db) -> None:
        self._db = db

    async def rules(self) -> list[RoutingRule]:
        return [RoutingRule.from_doc(d) async for d in self._db.routing_rules.find({})]

    async def teams(self) -> dict[str, Team]:
        return {t.name: t for t in [Team.from_doc(d) async for d in self._db.teams.find({})]}

    async def agents(self) -> list[AgentProfile]:
        return [AgentProfile.from_doc(d) async for d in self._db.agents.find({})]

    async def agent(self, name: str) -> AgentProfile | None:
        doc = await self._db.agents.find_one({"name": name})
        return AgentProfile.from_doc(doc) if doc else None

    async def lead_of(self, team: str | None) -> str | None:
        doc = await self._db.teams.find_one({"name": team}) if team else None
        lead = (doc or {}).get("lead")
        return str(lead) if lead else None

    async def open_counts(self, names: Sequence[str]) -> dict[str, int]:
        if not names:
            return {}
        pipeline: list[dict[str, Any]] = [
            {"$match": {"assignee": {"$in": list(names)}, "status": {"$in": list(OPEN_STATUSES)}}},
            {"$group": {"_id": "$assignee", "n": {"$sum": 1}}},
        ]
        cursor = await self._db.tickets.aggregate(pipeline)
        return {str(d["_id"]): int(d["n"]) async for d in cursor}

    async def take_seq(self, key: str) -> int:
        """The counter's value for this assignment; the next caller gets one more."""
        doc = await self._db.routing_state.find_one_and_update(
            {"_id": key}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert doc is not None
        return int(doc["seq"]) - 1

    async def peek_seq(self, key: str) -> int:
        doc = await self._db.routing_state.find_one({"_id": key})
        return int(doc["seq"]) if doc else 0

    async def customer(self, customer_id: str) -> Mapping[str, Any]:
        try:
            doc = await self._db.customers.find_one({"_id": ObjectId(customer_id)})
        except Exception:  # a legacy or foreign id: route without customer facts
            return {}
        return doc or {}


def rr_key(team: str, skill: str | None) -> str:
    return f"rr:{team}:{skill or ''}"


def context_of(ticket: Ticket | Mapping[str, Any], customer: Mapping[str, Any]) -> RoutingContext:
    get = ticket.get if isinstance(ticket, Mapping) else lambda k, d=None: getattr(ticket, k, d)
    return RoutingContext(
        subject=str(get("subject", "") or ""),
        description=str(get("description", "") or ""),
        category=get("category"),
        channel=str(get("channel", "") or ""),
        priority=str(get("priority", "normal") or "normal"),
        customer_tags=tuple(customer.get("tags") or ()),
        tier=customer.get("tier"),
        fields={str(k): str(v) for k, v in dict(get("fields", {}) or {}).items()},
    )


class AssignmentService:
    def __init__(
        self,
        store: MongoRoutingStore,
        tickets: TicketRepository,
        events: EventDispatcher,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self._tickets = tickets
        self._events = events
        self._clock = clock

    def subscribe(self, events: EventDispatcher) -> None:
        events.register(TicketCreated, self.on_created)
        events.register(TicketUpdated, self.on_updated)

    async def decide(
        self, ctx: RoutingContext, *, rules: Sequence[RoutingRule] | None = None, take: bool = False
    ) -> Decision:
        """`take=False` (dry run) reads the round-robin counter; `take=True` (live) advances it. With
        nothing else assigning meanwhile, both pick the same agent."""
        rules = list(rules) if rules is not None else await self.store.rules()
        rule = first_rule(rules, ctx)
        if rule is None:
            return Decision(reason="no rule matched")
        teams = await self.store.teams()
        agents = await self.store.agents()
        members = [a.name for a in agents if rule.team in a.teams]
        counts = await self.store.open_counts(members)
        team = teams.get(rule.team)
        seq = 0
        if team is not None and team.strategy == "round_robin":
            preview = decide(ctx, rules, teams, agents, counts, 0)
            if preview.assignee is not None:
                key = rr_key(rule.team, rule.skill)
                seq = await self.store.take_seq(key) if take else await self.store.peek_seq(key)
        return decide(ctx, rules, teams, agents, counts, seq)

    async def on_created(self, event: TicketCreated) -> None:
        ticket = await self._tickets.get(event.ticket_id)
        if ticket.team or ticket.assignee:
            return  # a retried handler (or assigned at intake): decided already
        rules = await self.store.rules()
        if not rules:
            return  # nothing configured: tickets wait for someone to take them
        customer = await self.store.customer(ticket.requester)
        decision = await self.decide(context_of(ticket, customer), rules=rules, take=True)
        if decision.team is None:
            return
        await self.apply(ticket, decision, Actor.system("routing"), event_id=f"{ticket.id}:assigned")

    async def apply(self, ticket: Ticket, decision: Decision, actor: Actor, *, event_id: str) -> Ticket:
        now = self._clock()
        await self._tickets.append_event(
            {
                "event_id": event_id,
                "ticket_id": ticket.id,
                "number": ticket.number,
                "type": "assigned",
                "actor": dataclasses.asdict(actor),
                "at": now,
                "data": decision.to_dict(),
            }
        )
        changes: dict[str, Any] = {"team": decision.team, "updated_at": now}
        if decision.assignee:
            changes["assignee"] = decision.assignee
        updated = await self._tickets.update(ticket.id, changes)
        await self._events.publish(
            TicketAssigned(
                event_id,
                ticket.id,
                ticket.number,
                now,
                actor,
                team=decision.team,
                assignee=decision.assignee,
                rule=decision.rule,
                strategy=decision.strategy,
            )
        )
        return updated

    async def on_updated(self, event: TicketUpdated) -> None:
        """A hand-made assignment (console, API, relay /assign) notifies like a routed one."""
        change = event.changes.get("assignee")
        if not change or not change[1]:
            return
        try:
            ticket = await self._tickets.get(event.ticket_id)
        except NotFound:
            return
        await self._events.publish(
            TicketAssigned(
                f"{event.event_id}:assigned",
                ticket.id,
                ticket.number,
                event.at,
                event.actor,
                team=ticket.team,
                assignee=str(change[1]),
                strategy="manual",
            )
        )

    async def replay(
        self,
        tickets: Sequence[Mapping[str, Any]],
        customers: Mapping[str, Mapping[str, Any]],
        *,
        rules: Sequence[RoutingRule] | None = None,
    ) -> dict[str, Any]:
        """What the rules would have done with these tickets, in creation order, from a fresh state
        (round robin from the first member, least-open counting only the replayed assignments)."""
        rules = list(rules) if rules is not None else await self.store.rules()
        teams = await self.store.teams()
        agents = await self.store.agents()
        counts: dict[str, int] = defaultdict(int)
        seqs: dict[str, int] = defaultdict(int)
        items: list[dict[str, Any]] = []
        by_team: dict[str, int] = defaultdict(int)
        by_agent: dict[str, int] = defaultdict(int)
        changed = 0
        for doc in tickets:
            ctx = context_of(doc, customers.get(str(doc.get("requester")), {}))
            rule = first_rule(rules, ctx)
            key = rr_key(rule.team, rule.skill) if rule else ""
            decision = decide(ctx, rules, teams, agents, counts, seqs[key])
            if decision.assignee:
                counts[decision.assignee] += 1
                if decision.strategy == "round_robin":
                    seqs[key] += 1
            by_team[decision.team or "(none)"] += 1
            by_agent[decision.assignee or "(none)"] += 1
            actual = {"team": doc.get("team"), "assignee": doc.get("assignee")}
            differs = (actual["team"], actual["assignee"]) != (decision.team, decision.assignee)
            changed += differs
            items.append(
                {
                    "number": doc.get("number"),
                    "created_at": doc.get("created_at"),
                    "actual": actual,
                    "would": decision.to_dict(),
                    "differs": differs,
                }
            )
        return {
            "count": len(items),
            "changed": changed,
            "by_team": dict(by_team),
            "by_assignee": dict(by_agent),
            "items": items,
        }
