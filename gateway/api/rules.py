"""REST for auto-reply rules: CRUD and the dry run that shows which rules fire for a sample message."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from bson import ObjectId

from bots.rules import RuleEngine, validate_rule
from dialog.ports import RuleContext
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import DATABASE
from ticket_core.errors import InvalidInput, NotFound
from ticket_core.repository import object_id

routes = web.RouteTableDef()


@routes.get("/api/v1/rules")
async def list_rules(request: web.Request) -> web.Response:
    items = await RuleEngine(request.app[DATABASE].db).rules()
    return json_response({"items": items, "next": None})


@routes.post("/api/v1/rules")
async def create_rule(request: web.Request) -> web.Response:
    rule = validate_rule(await read_json_object(request))
    rule["_id"] = ObjectId()
    await request.app[DATABASE].db.rules.insert_one(rule)
    return json_response(rule, status=201)


@routes.put("/api/v1/rules/{id}")
async def update_rule(request: web.Request) -> web.Response:
    rule = validate_rule(await read_json_object(request))
    oid = object_id(request.match_info["id"])
    result = await request.app[DATABASE].db.rules.update_one({"_id": oid}, {"$set": rule})
    if result.matched_count == 0:
        raise NotFound(f"no rule {request.match_info['id']}")
    return json_response({**rule, "_id": oid})


@routes.delete("/api/v1/rules/{id}")
async def delete_rule(request: web.Request) -> web.Response:
    result = await request.app[DATABASE].db.rules.delete_one({"_id": object_id(request.match_info["id"])})
    if result.deleted_count == 0:
        raise NotFound(f"no rule {request.match_info['id']}")
    return web.Response(status=204)


@routes.post("/api/v1/rules/dry-run")
async def dry_run(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    text = body.get("text")
    if not isinstance(text, str):
        raise InvalidInput("text is required", code="invalid_fields", fields={"text": "is required"})
    at = body.get("at")
    try:
        now = datetime.fromisoformat(at) if isinstance(at, str) else datetime.now(UTC)
    except ValueError as exc:
        raise InvalidInput(
            "at must be an ISO 8601 time", code="invalid_fields", fields={"at": "ISO 8601"}
        ) from exc
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    ctx = RuleContext(
        channel=str(body.get("channel", "webform")),
        text=text,
        now=now,
        first_contact=bool(body.get("first_contact", True)),
        locale=str(body.get("locale", "zh-CN")),
        customer_tags=tuple(str(t) for t in body.get("customer_tags", []) or []),
    )
    outcome = await RuleEngine(request.app[DATABASE].db).evaluate(ctx)
    return json_response(
        {
            "fired": list(outcome.fired),
            "replies": list(outcome.replies),
            "category": outcome.category,
            "priority": outcome.priority,
            "tags": list(outcome.tags),
            "skip_suggestions": outcome.skip_suggestions,
            "handoff": outcome.handoff,
            "details": [dict(d) for d in outcome.details],
        }
    )
