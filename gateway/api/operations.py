"""REST for ticket operations: teams, agents' routing profile, routing rules with dry run and replay,
SLA policies, the business-hours calendar, notification settings and follow-up tasks.

Configuration is admin-only; an agent may switch their own on-line state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from bson import ObjectId

from gateway.api.auth import principal, require_role
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import OPERATIONS, TICKETS
from ticket_core.assignment import MAX_REPLAY, context_of
from ticket_core.business_hours import BusinessCalendar
from ticket_core.errors import InvalidInput, NotFound
from ticket_core.repository import object_id
from ticket_core.rollups import CALENDAR_ID
from ticket_core.routing import RoutingContext, RoutingRule, Team
from ticket_core.sla import SlaPolicy

routes = web.RouteTableDef()
AGENT_FIELDS = (
    "name",
    "role",
    "email",
    "telegram_user_id",
    "username",
    "teams",
    "skills",
    "online",
    "capacity",
)


def _admin(request: web.Request) -> None:
    require_role(request, "admin")


# -- teams ------------------------------------------------------------------------------------------


@routes.get("/api/v1/teams")
async def list_teams(request: web.Request) -> web.Response:
    db = request.app[OPERATIONS].db
    return json_response({"items": [d async for d in db.teams.find({}).sort("name", 1)], "next": None})


@routes.post("/api/v1/teams")
async def create_team(request: web.Request) -> web.Response:
    _admin(request)
    team = Team.from_doc(await read_json_object(request))
    db = request.app[OPERATIONS].db
    # $set only our fields: the accounts console keeps a description on the same document.
    await db.teams.update_one({"name": team.name}, {"$set": team.to_doc()}, upsert=True)
    return json_response(await db.teams.find_one({"name": team.name}), status=201)


@routes.put("/api/v1/teams/{name}")
async def update_team(request: web.Request) -> web.Response:
    _admin(request)
    body = {**await read_json_object(request), "name": request.match_info["name"]}
    team = Team.from_doc(body)
    db = request.app[OPERATIONS].db
    result = await db.teams.update_one({"name": team.name}, {"$set": team.to_doc()})
    if result.matched_count == 0:
        raise NotFound(f"no team {team.name!r}")
    return json_response(await db.teams.find_one({"name": team.name}))


@routes.delete("/api/v1/teams/{name}")
async def delete_team(request: web.Request) -> web.Response:
    _admin(request)
    result = await request.app[OPERATIONS].db.teams.delete_one({"name": request.match_info["name"]})
    if result.deleted_count == 0:
        raise NotFound(f"no team {request.match_info['name']!r}")
    return web.Response(status=204)


# -- agents (the routing side of `agents` documents) -----------------------------------------------------


def _agent_fields(body: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    unknown = set(body) - set(AGENT_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_fields")
    problems: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("name", "role", "email", "username") and value is not None and not isinstance(value, str):
            problems[key] = "must be a string"
        elif key in ("teams", "skills") and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            problems[key] = "must be a list of strings"
        elif key == "online" and not isinstance(value, bool):
            problems[key] = "must be true or false"
        elif (
            key == "capacity"
            and value is not None
            and (not isinstance(value, int) or isinstance(value, bool) or value < 0)
        ):
            problems[key] = "must be a non-negative integer or null"
        elif (
            key == "telegram_user_id"
            and value is not None
            and (not isinstance(value, int) or isinstance(value, bool))
        ):
            problems[key] = "must be an integer"
        elif key == "role" and value not in ("admin", "agent", "viewer"):
            problems[key] = "must be admin, agent or viewer"
        else:
            out[key] = value
    if not partial and not (isinstance(body.get("name"), str) and body["name"].strip()):
        problems["name"] = "is required"
    if problems:
        raise InvalidInput("invalid agent", code="invalid_fields", fields=problems)
    return out


@routes.get("/api/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    db = request.app[OPERATIONS].db
    projection = {f: 1 for f in AGENT_FIELDS}
    items = [d async for d in db.agents.find({}, projection).sort("name", 1)]
    names = [str(d.get("name")) for d in items]
    counts = await request.app[OPERATIONS].routing.open_counts(names)
    for doc in items:
        doc["open_tickets"] = counts.get(str(doc.get("name")), 0)
    return json_response({"items": items, "next": None})


@routes.post("/api/v1/agents")
async def create_agent(request: web.Request) -> web.Response:
    _admin(request)
    fields = _agent_fields(await read_json_object(request), partial=False)
    fields.setdefault("role", "agent")
    db = request.app[OPERATIONS].db
    await db.agents.update_one({"name": fields["name"]}, {"$set": fields}, upsert=True)
    return json_response(
        await db.agents.find_one({"name": fields["name"]}, {f: 1 for f in AGENT_FIELDS}), status=201
    )


@routes.patch("/api/v1/agents/{name}")
async def update_agent(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    fields = _agent_fields(await read_json_object(request), partial=True)
    who = principal(request)
    if who.role != "admin" and not (who.name == name and set(fields) <= {"online"}):
        raise web.HTTPForbidden(reason="Forbidden", text="agents may only switch their own on-line state")
    fields.pop("name", None)
    db = request.app[OPERATIONS].db
    result = await db.agents.update_one({"name": name}, {"$set": fields})
    if result.matched_count == 0:
        raise NotFound(f"no agent {name!r}")
    return json_response(await db.agents.find_one({"name": name}, {f: 1 for f in AGENT_FIELDS}))


# -- routing rules ---------------------------------------------------------------------------------------


def _rule_doc(body: Mapping[str, Any]) -> dict[str, Any]:
    return RoutingRule.from_doc(body).to_doc()


@routes.get("/api/v1/routing-rules")
async def list_routing_rules(request: web.Request) -> web.Response:
    db = request.app[OPERATIONS].db
    return json_response(
        {"items": [d async for d in db.routing_rules.find({}).sort("order", 1)], "next": None}
    )


@routes.post("/api/v1/routing-rules")
async def create_routing_rule(request: web.Request) -> web.Response:
    _admin(request)
    doc = _rule_doc(await read_json_object(request))
    doc["_id"] = ObjectId()
    await request.app[OPERATIONS].db.routing_rules.insert_one(doc)
    return json_response(doc, status=201)


@routes.put("/api/v1/routing-rules/{id}")
async def update_routing_rule(request: web.Request) -> web.Response:
    _admin(request)
    doc = _rule_doc(await read_json_object(request))
    oid = object_id(request.match_info["id"])
    result = await request.app[OPERATIONS].db.routing_rules.update_one({"_id": oid}, {"$set": doc})
    if result.matched_count == 0:
        raise NotFound(f"no routing rule {request.match_info['id']}")
    return json_response({**doc, "_id": oid})


@routes.delete("/api/v1/routing-rules/{id}")
async def delete_routing_rule(request: web.Request) -> web.Response:
    _admin(request)
    result = await request.app[OPERATIONS].db.routing_rules.delete_one(
        {"_id": object_id(request.match_info["id"])}
    )
    if result.deleted_count == 0:
        raise NotFound(f"no routing rule {request.match_info['id']}")
    return web.Response(status=204)


def _proposed_rules(body: Mapping[str, Any]) -> list[RoutingRule] | None:
    raw = body.get("rules")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise InvalidInput(
            "rules must be a list of rule objects", code="invalid_fields", fields={"rules": "list"}
        )
    return [RoutingRule.from_doc({**r, "_id": r.get("_id", f"proposed-{i}")}) for i, r in enumerate(raw)]


@routes.post("/api/v1/routing-rules/dry-run")
async def routing_dry_run(request: web.Request) -> web.Response:
    """Who a ticket (an existing one by `ticket`, or described inline) would go to now."""
    body = await read_json_object(request)
    ops = request.app[OPERATIONS]
    if isinstance(body.get("ticket"), str):
        ticket = await request.app[TICKETS].get_by_number(body["ticket"])
        ctx = context_of(ticket, await ops.routing.customer(ticket.requester))
    else:
        ctx = _inline_context(body)
    decision = await ops.assignment.decide(ctx, rules=_proposed_rules(body), take=False)
    return json_response(decision.to_dict())


def _inline_context(body: Mapping[str, Any]) -> RoutingContext:
    def text(name: str, default: str = "") -> str:
        value = body.get(name, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string", code="invalid_fields", fields={name: "string"})
        return value

    tags = body.get("customer_tags") or []
    fields = body.get("fields") or {}
    if not isinstance(tags, list) or not isinstance(fields, dict):
        raise InvalidInput("customer_tags is a list and fields an object", code="invalid_fields")
    return RoutingContext(
        subject=text("subject"),
        description=text("description"),
        category=text("category") or None,
        channel=text("channel", "webform"),
        priority=text("priority", "normal"),
        customer_tags=tuple(str(t) for t in tags),
        tier=text("tier") or None,
        fields={str(k): str(v) for k, v in fields.items()},
    )


@routes.post("/api/v1/routing-rules/replay")
async def routing_replay(request: web.Request) -> web.Response:
    """What the rules (saved, or `rules` proposed in the body) would have done with the tickets created
    in [`from`, `to`) (default: the last 7 days). Changes nothing."""
    body = await read_json_object(request)
    ops = request.app[OPERATIONS]
    now = ops.clock()
    start = _time(body.get("from"), "from", now - timedelta(days=7))
    end = _time(body.get("to"), "to", now)
    if end <= start:
        raise InvalidInput("to must be after from", code="invalid_fields", fields={"to": "after from"})
    query = {"created_at": {"$gte": start, "$lt": end}}
    tickets = [d async for d in ops.db.tickets.find(query).sort("created_at", 1).limit(MAX_REPLAY + 1)]
    if len(tickets) > MAX_REPLAY:
        raise InvalidInput(f"more than {MAX_REPLAY} tickets in the range; narrow it", code="range_too_large")
    ids = list({d["requester"] for d in tickets if d.get("requester")})
    customers: dict[str, Any] = {}
    oids = [ObjectId(i) for i in ids if ObjectId.is_valid(i)]
    async for doc in ops.db.customers.find({"_id": {"$in": oids}}, {"tags": 1, "tier": 1}):
        customers[str(doc["_id"])] = doc
    result = await ops.assignment.replay(tickets, customers, rules=_proposed_rules(body))
    if not body.get("include_items", True):
        result.pop("items")
    return json_response({"from": start, "to": end, **result})


def _time(value: Any, name: str, default: datetime) -> datetime:
    if value is None:
        return default
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidInput(
            f"{name} must be an ISO 8601 time", code="invalid_fields", fields={name: "ISO 8601"}
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- SLA policies, calendar, notifications, tasks ---------------------------------------------------------


@routes.get("/api/v1/sla-policies")
async def list_sla_policies(request: web.Request) -> web.Response:
    db = request.app[OPERATIONS].db
    return json_response(
        {"items": [d async for d in db.sla_policies.find({}).sort("order", 1)], "next": None}
    )


@routes.post("/api/v1/sla-policies")
async def create_sla_policy(request: web.Request) -> web.Response:
    _admin(request)
    doc = SlaPolicy.from_doc(await read_json_object(request)).to_doc()
    doc["_id"] = ObjectId()
    await request.app[OPERATIONS].db.sla_policies.insert_one(doc)
    return json_response(doc, status=201)


@routes.put("/api/v1/sla-policies/{id}")
async def update_sla_policy(request: web.Request) -> web.Response:
    _admin(request)
    doc = SlaPolicy.from_doc(await read_json_object(request)).to_doc()
    oid = object_id(request.match_info["id"])
    result = await request.app[OPERATIONS].db.sla_policies.update_one({"_id": oid}, {"$set": doc})
    if result.matched_count == 0:
        raise NotFound(f"no SLA policy {request.match_info['id']}")
    return json_response({**doc, "_id": oid})


@routes.delete("/api/v1/sla-policies/{id}")
async def delete_sla_policy(request: web.Request) -> web.Response:
    _admin(request)
    result = await request.app[OPERATIONS].db.sla_policies.delete_one(
        {"_id": object_id(request.match_info["id"])}
    )
    if result.deleted_count == 0:
        raise NotFound(f"no SLA policy {request.match_info['id']}")
    return web.Response(status=204)


@routes.get("/api/v1/business-hours")
async def get_business_hours(request: web.Request) -> web.Response:
    return json_response((await request.app[OPERATIONS].rollups.calendar()).to_doc())


@routes.put("/api/v1/business-hours")
async def put_business_hours(request: web.Request) -> web.Response:
    """The reporting calendar (day boundaries and business time in reports; SLA policies carry their
    own). Changing it applies to new facts; POST /api/v1/reports/rebuild recomputes the history."""
    _admin(request)
    ops = request.app[OPERATIONS]
    calendar = BusinessCalendar.from_doc(await read_json_object(request))
    await ops.db.settings.update_one({"_id": CALENDAR_ID}, {"$set": calendar.to_doc()}, upsert=True)
    ops.rollups.forget_calendar()
    return json_response(calendar.to_doc())


@routes.get("/api/v1/notification-settings")
async def get_notification_settings(request: web.Request) -> web.Response:
    return json_response(await request.app[OPERATIONS].policy.settings())


@routes.put("/api/v1/notification-settings")
async def put_notification_settings(request: web.Request) -> web.Response:
    _admin(request)
    return json_response(await request.app[OPERATIONS].policy.save(await read_json_object(request)))


@routes.get("/api/v1/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    state = request.query.get("state")
    query: dict[str, Any] = {"state": state} if state else {}
    cursor = request.app[OPERATIONS].db.tasks.find(query).sort("created_at", -1).limit(200)
    return json_response({"items": [d async for d in cursor], "next": None})


@routes.patch("/api/v1/tasks/{id}")
async def update_task(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if body.get("state") not in ("open", "done"):
        raise InvalidInput("state must be open or done", code="invalid_fields", fields={"state": "open|done"})
    db = request.app[OPERATIONS].db
    result = await db.tasks.update_one({"_id": request.match_info["id"]}, {"$set": {"state": body["state"]}})
    if result.matched_count == 0:
        raise NotFound(f"no task {request.match_info['id']}")
    return json_response(await db.tasks.find_one({"_id": request.match_info["id"]}))
