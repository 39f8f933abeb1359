"""REST for the agent desk's own records: saved views of the ticket queue, and macros (the same
`macros` records the Telegram relay applies with /macro)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from bson import ObjectId

from gateway.accounts.store import NAME_RE
from gateway.api import admin_audit
from gateway.api.auth import principal
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import DATABASE
from ticket_core.errors import InvalidInput, NotFound
from ticket_core.model import PRIORITIES, STATUSES
from ticket_core.repository import object_id

routes = web.RouteTableDef()
VIEW_FILTERS = ("status", "channel", "priority", "assignee", "category", "team", "requester")


def _bad(fields: dict[str, str]) -> InvalidInput:
    return InvalidInput("the body has invalid fields", code="invalid_fields", fields=fields)


# -- saved views -------------------------------------------------------------------------------------


@routes.get("/api/v1/views")
async def list_views(request: web.Request) -> web.Response:
    who = principal(request).name
    cursor = request.app[DATABASE].db.views.find({"$or": [{"owner": who}, {"shared": True}]}).sort("name", 1)
    return json_response({"items": [d async for d in cursor.limit(200)], "next": None})


@routes.post("/api/v1/views")
async def create_view(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    errors: dict[str, str] = {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 80:
        errors["name"] = "is required (at most 80 characters)"
    filters = body.get("filters", {})
    if not isinstance(filters, dict) or set(filters) - set(VIEW_FILTERS):
        errors["filters"] = f"an object with some of {', '.join(VIEW_FILTERS)}"
    elif not all(isinstance(v, str) and len(v) <= 200 for v in filters.values()):
        errors["filters"] = "values must be strings"
    elif filters.get("status") and filters["status"] not in STATUSES:
        errors["filters"] = f"status must be one of {', '.join(STATUSES)}"
    shared = body.get("shared", False)
    if not isinstance(shared, bool):
        errors["shared"] = "true or false"
    if set(body) - {"name", "filters", "shared"}:
        errors.update({k: "unknown field" for k in set(body) - {"name", "filters", "shared"}})
    if errors:
        raise _bad(errors)
    doc = {
        "_id": ObjectId(),
        "name": str(name).strip(),
        "filters": {k: v for k, v in filters.items() if v},
        "shared": shared,
        "owner": principal(request).name,
        "created_at": datetime.now(UTC),
    }
    await request.app[DATABASE].db.views.insert_one(doc)
    return json_response(doc, status=201)


@routes.delete("/api/v1/views/{id}")
async def delete_view(request: web.Request) -> web.Response:
    who = principal(request)
    query: dict[str, Any] = {"_id": object_id(request.match_info["id"])}
    if who.role != "admin":
        query["owner"] = who.name
    result = await request.app[DATABASE].db.views.delete_one(query)
    if result.deleted_count == 0:
        raise NotFound(f"no view {request.match_info['id']} of yours")
    return web.Response(status=204)


# -- macros ------------------------------------------------------------------------------------------


def validate_macro(body: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    allowed = {"title", "text", "tags", "priority", "status"}
    errors.update({k: "unknown field" for k in set(body) - allowed - {"name"}})
    text = body.get("text", "")
    if isinstance(text, dict):
        if not all(k in ("en", "zh-CN") and isinstance(v, str) and len(v) <= 10_000 for k, v in text.items()):
            errors["text"] = "a string, or an object of en/zh-CN to strings"
    elif not isinstance(text, str) or len(text) > 10_000:
        errors["text"] = "a string of at most 10000 characters"
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 50 for t in tags):
        errors["tags"] = "a list of tags ('-tag' removes one)"
    if body.get("priority") not in (None, "", *PRIORITIES):
        errors["priority"] = f"one of {', '.join(PRIORITIES)}"
    if body.get("status") not in (None, "", *STATUSES):
        errors["status"] = f"one of {', '.join(STATUSES)}"
    title = body.get("title", "")
    if not isinstance(title, str) or len(title) > 200:
        errors["title"] = "a string of at most 200 characters"
    if errors:
        raise _bad(errors)
    return {
        "title": title,
        "text": text,
        "tags": tags,
        "priority": body.get("priority") or None,
        "status": body.get("status") or None,
    }


@routes.get("/api/v1/macros")
async def list_macros(request: web.Request) -> web.Response:
    cursor = request.app[DATABASE].db.macros.find({}, {"_id": 0}).sort("name", 1).limit(500)
    return json_response({"items": [d async for d in cursor], "next": None})


@routes.put("/api/v1/macros/{name}")
async def put_macro(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not NAME_RE.match(name):
        raise _bad({"name": "1-64 letters, digits, '.', '-' or '_'"})
    macro = validate_macro(await read_json_object(request))
    db = request.app[DATABASE].db
    before = await db.macros.find_one({"name": name}, {"_id": 0})
    await db.macros.update_one({"name": name}, {"$set": {**macro, "name": name}}, upsert=True)
    after = {**macro, "name": name}
    await admin_audit.record(request, "macro.update" if before else "macro.create", name, before, after)
    return json_response(after, status=200 if before else 201)


@routes.delete("/api/v1/macros/{name}")
async def delete_macro(request: web.Request) -> web.Response:
    db = request.app[DATABASE].db
    before = await db.macros.find_one({"name": request.match_info["name"]}, {"_id": 0})
    if before is None:
        raise NotFound(f"no macro {request.match_info['name']}")
    await db.macros.delete_one({"name": request.match_info["name"]})
    await admin_audit.record(request, "macro.delete", request.match_info["name"], before, None)
    return web.Response(status=204)
