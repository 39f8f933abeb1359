"""REST API for tickets: list, read with events, update, reply or note, and delivery records."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.api.auth import can_see_team, principal, visible_to
from gateway.appkeys import ATTACHMENTS, DATABASE, TICKET_SERVICE, TICKETS
from ticket_core.errors import InvalidInput, NotFound
from ticket_core.model import STATUSES, Actor, Ticket
from ticket_core.repository import object_id, validate_filters

MAX_LIMIT = 200
routes = web.RouteTableDef()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "_id"} | (
            {"id": str(value["_id"])} if "_id" in value else {}
        )
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if type(value).__name__ == "ObjectId":
        return str(value)
    return value


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        _jsonable(data), status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False)
    )


def _bounded_int(text: str) -> int:
    """MongoDB stores 64-bit integers: a larger one would fail deep in the driver, so refuse it here."""
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise InvalidInput(f"the number {text[:30]} is out of range", code="invalid_json")
    return value


async def read_json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw.decode("utf-8"), parse_int=_bounded_int)
    except UnicodeDecodeError as exc:
        raise InvalidInput("the body is not valid UTF-8", code="invalid_encoding") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise InvalidInput("the JSON body must be an object", code="invalid_json")
    return data


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError as exc:
        raise InvalidInput("limit must be a number", code="invalid_limit") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
    return limit


@routes.get("/api/v1/tickets")
async def list_tickets(request: web.Request) -> web.Response:
    query = {k: v for k, v in request.query.items() if k not in ("limit", "cursor")}
    filters = validate_filters(query, ("status", "channel", "requester", "assignee", "priority", "category"))
    if "status" in filters and filters["status"] not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", code="invalid_filter")
    limit = _limit(request)
    team_filter = visible_to(principal(request))
    if team_filter:
        filters.update(team_filter)
    items = await request.app[TICKETS].search(filters, after=request.query.get("cursor"), limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return json_response({"items": [t.public_view() for t in items], "next": items[-1].id if more else None})


async def visible_ticket(request: web.Request) -> Ticket:
    """The ticket in the path, if the caller's teams may see it (otherwise it does not exist for them)."""
    number = request.match_info["number"]
    ticket = await request.app[TICKETS].get_by_number(number)
    if not can_see_team(principal(request), getattr(ticket, "team", None)):
        raise NotFound(f"no ticket {number}")
    return ticket


@routes.get("/api/v1/tickets/{number}")
async def get_ticket(request: web.Request) -> web.Response:
    repo = request.app[TICKETS]
    ticket = await visible_ticket(request)
    events = await repo.events(ticket.id)
    return json_response({**ticket.public_view(), "events": events})


def _actor(request: web.Request) -> Actor:
    who = principal(request)
    return Actor("agent", who.token_id, who.name)


@routes.patch("/api/v1/tickets/{number}")
async def update_ticket(request: web.Request) -> web.Response:
    ticket = await visible_ticket(request)
    body = await read_json_object(request)
    unknown = set(body) - {"status", "priority", "assignee", "tags", "category"}
    if unknown:
        raise InvalidInput(
            f"unknown field(s): {', '.join(sorted(unknown))}",
            code="invalid_fields",
            fields={k: "unknown field" for k in unknown},
        )
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise InvalidInput(
            "tags must be a list of strings", code="invalid_fields", fields={"tags": "list of strings"}
        )
    for name in ("status", "priority", "assignee", "category"):
        if name in body and body[name] is not None and not isinstance(body[name], str):
            raise InvalidInput(
                f"{name} must be a string", code="invalid_fields", fields={name: "must be a string"}
            )
    service = request.app[TICKET_SERVICE]
    actor = _actor(request)
    ticket = await service.update_fields(
        ticket,
        actor,
        priority=body.get("priority"),
        assignee=body.get("assignee"),
        tags=tags,
        category=body.get("category"),
    )
    if body.get("status"):
        ticket = await service.change_status(ticket, body["status"], actor)
    return json_response(ticket.public_view())


@routes.post("/api/v1/tickets/{number}/replies")
async def add_reply(request: web.Request) -> web.Response:
    ticket = await visible_ticket(request)  # before validation: others' tickets do not exist for them
    body = await read_json_object(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text is required", code="invalid_fields", fields={"text": "is required"})
    visibility = body.get("type", "public" if body.get("public", True) else "internal")
    if visibility not in ("public", "internal"):
        raise InvalidInput(
            "type must be public or internal", code="invalid_fields", fields={"type": "public|internal"}
        )
    service = request.app[TICKET_SERVICE]
    if visibility == "public":
        ticket = await service.add_public_reply(ticket, text, _actor(request))
    else:
        ticket = await service.add_internal_note(ticket, text, _actor(request))
    return json_response({"ticket": ticket.public_view(), "type": visibility}, status=201)


@routes.get("/api/v1/tickets/{number}/deliveries")
async def ticket_deliveries(request: web.Request) -> web.Response:
    ticket = await visible_ticket(request)
    cursor = (
        request.app[DATABASE].db.outbox.find({"ticket_id": ticket.id}, {"message.html": 0}).sort("_id", 1)
    )
    return json_response({"items": [doc async for doc in cursor], "next": None})


@routes.get("/api/v1/tickets/{number}/attachments/{file_id}")
async def download_attachment(request: web.Request) -> web.Response:
    """An attachment of this ticket (from its creation or any of its events), for someone who may see it."""
    ticket = await visible_ticket(request)
    file_id = request.match_info["file_id"]
    known = any(str(a.get("file_id")) == file_id for a in ticket.attachments)
    if not known:
        found = await request.app[DATABASE].db.ticket_events.find_one(
            {"ticket_id": ticket.id, "data.attachments.file_id": file_id}, {"_id": 1}
        )
        known = found is not None
    if not known:
        raise NotFound(f"ticket {ticket.number} has no attachment {file_id}")
    data, meta = await request.app[ATTACHMENTS].load(file_id)
    filename = quote(str(meta.get("filename") or "attachment"), safe="")
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={
            # Never rendered inline: a customer's HTML or SVG file must not run in the console's origin.
            "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
            "X-Content-Type-Options": "nosniff",
        },
    )


@routes.get("/api/v1/outbox")
async def list_outbox(request: web.Request) -> web.Response:
    filters = validate_filters(
        {k: v for k, v in request.query.items() if k not in ("limit", "cursor")}, ("state", "channel")
    )
    limit = _limit(request)
    query: dict[str, Any] = dict(filters)
    if request.query.get("cursor"):
        query["_id"] = {"$lt": object_id(request.query["cursor"])}
    cursor = request.app[DATABASE].db.outbox.find(query, {"message.html": 0}).sort("_id", -1).limit(limit + 1)
    items = [doc async for doc in cursor]
    more = len(items) > limit
    items = items[:limit]
    return json_response({"items": items, "next": str(items[-1]["_id"]) if more else None})
