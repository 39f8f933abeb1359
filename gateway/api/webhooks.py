"""REST for outgoing webhook subscriptions (admin only): URL, events, active; the signing secret is shown
once when created (or rotated), never listed."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from bson import ObjectId

from gateway.api import admin_audit
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import DATABASE
from gateway.webhooks import EVENT_TYPES
from ticket_core.errors import InvalidInput, NotFound
from ticket_core.repository import object_id

routes = web.RouteTableDef()
KNOWN_EVENTS = ("*", *EVENT_TYPES.values())


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "url": doc["url"],
        "events": list(doc.get("events", ["*"])),
        "active": bool(doc.get("active", True)),
        "description": doc.get("description", ""),
        "created_at": doc.get("created_at"),
        "last_status": doc.get("last_status"),
    }


def _validate(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    errors.update(
        {k: "unknown field" for k in set(body) - {"url", "events", "active", "description", "secret"}}
    )
    if "url" in body or not partial:
        url = body.get("url")
        parsed = urlparse(url) if isinstance(url, str) else None
        if (
            parsed is None
            or parsed.scheme not in ("http", "https")
            or not parsed.hostname
            or len(url or "") > 2000
        ):
            errors["url"] = "an http(s) URL"
        else:
            out["url"] = url
    if "events" in body:
        events = body["events"]
        if not isinstance(events, list) or not events or not all(e in KNOWN_EVENTS for e in events):
            errors["events"] = f"a non-empty list of {', '.join(KNOWN_EVENTS)}"
        else:
            out["events"] = sorted(set(events))
    if "active" in body:
        if not isinstance(body["active"], bool):
            errors["active"] = "true or false"
        else:
            out["active"] = body["active"]
    if "description" in body:
        if not isinstance(body["description"], str) or len(body["description"]) > 500:
            errors["description"] = "at most 500 characters"
        else:
            out["description"] = body["description"]
    if "secret" in body:
        if not isinstance(body["secret"], str) or not 16 <= len(body["secret"]) <= 200:
            errors["secret"] = "16-200 characters"
        else:
            out["secret"] = body["secret"]
    if errors:
        raise InvalidInput("the subscription has invalid fields", code="invalid_fields", fields=errors)
    return out


@routes.get("/api/v1/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    cursor = request.app[DATABASE].db.webhooks.find({}).sort("_id", 1).limit(500)
    return json_response({"items": [_view(d) async for d in cursor], "next": None})


@routes.post("/api/v1/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    fields = _validate(await read_json_object(request), partial=False)
    doc = {
        "_id": ObjectId(),
        "events": ["*"],
        "active": True,
        "description": "",
        "secret": secrets.token_urlsafe(32),
        "created_at": datetime.now(UTC),
        **fields,
    }
    await request.app[DATABASE].db.webhooks.insert_one(doc)
    await admin_audit.record(request, "webhook.create", str(doc["_id"]), None, _view(doc))
    return json_response({**_view(doc), "secret": doc["secret"]}, status=201)


@routes.get("/api/v1/webhooks/{id}")
async def get_webhook(request: web.Request) -> web.Response:
    doc = await request.app[DATABASE].db.webhooks.find_one({"_id": object_id(request.match_info["id"])})
    if doc is None:
        raise NotFound(f"no webhook {request.match_info['id']}")
    return json_response(_view(doc))


@routes.patch("/api/v1/webhooks/{id}")
async def update_webhook(request: web.Request) -> web.Response:
    oid = object_id(request.match_info["id"])
    fields = _validate(await read_json_object(request), partial=True)
    db = request.app[DATABASE].db
    before = await db.webhooks.find_one({"_id": oid})
    if before is None:
        raise NotFound(f"no webhook {request.match_info['id']}")
    if fields:
        await db.webhooks.update_one({"_id": oid}, {"$set": fields})
    after = await db.webhooks.find_one({"_id": oid})
    assert after is not None
    await admin_audit.record(request, "webhook.update", str(oid), _view(before), _view(after))
    return json_response(_view(after))


@routes.delete("/api/v1/webhooks/{id}")
async def delete_webhook(request: web.Request) -> web.Response:
    oid = object_id(request.match_info["id"])
    db = request.app[DATABASE].db
    before = await db.webhooks.find_one({"_id": oid})
    if before is None:
        raise NotFound(f"no webhook {request.match_info['id']}")
    await db.webhooks.delete_one({"_id": oid})
    await admin_audit.record(request, "webhook.delete", str(oid), _view(before), None)
    return web.Response(status=204)
