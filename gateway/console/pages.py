"""The console's pages. Pages read what they show; every change goes through the REST API (fetch with
the session cookie and the CSRF header), so the console can do nothing an API client cannot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.api.auth import can_see_team, maybe_principal, visible_to
from gateway.appkeys import ACCOUNTS, DATABASE, LIVE, TICKETS
from gateway.console import login
from gateway.console.render import ADMIN_PAGES, error_page, page
from gateway.tokens import Principal
from ticket_core.errors import NotFound
from ticket_core.model import PRIORITIES, STATUSES
from ticket_core.repository import validate_filters

STATIC = Path(__file__).parent / "static"
QUEUE_FILTERS = ("status", "channel", "priority", "assignee", "category", "team", "view")
QUEUE_LIMIT = 100
HEARTBEAT_SECONDS = 15.0

Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]


def signed_in(
    handler: Handler, *, admin: bool = False
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Anonymous people go to the login page; non-admins get a friendly 403 on admin pages."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        who = maybe_principal(request)
        if who is None:
            return login.login_redirect(request)
        if admin and who.role != "admin":
            return error_page(request, 403, "forbidden")
        return await handler(request, who)

    return wrapper


async def home(request: web.Request) -> web.Response:
    return login.redirect("/admin/tickets" if maybe_principal(request) else "/admin/login")


# -- queue ---------------------------------------------------------------------------------------------


async def queue(request: web.Request, who: Principal) -> web.Response:
    db = request.app[DATABASE].db
    views = [v async for v in db.views.find({"$or": [{"owner": who.name}, {"shared": True}]}).sort("name", 1)]
    raw = {k: v for k, v in request.query.items() if k in QUEUE_FILTERS and k != "fragment"}
    chosen = next((v for v in views if str(v["_id"]) == raw.get("view")), None)
    filters = dict(chosen["filters"]) if chosen else {k: v for k, v in raw.items() if k != "view" and v}
    if filters.get("status") and filters["status"] not in STATUSES:
        filters.pop("status")
    query = validate_filters(filters, QUEUE_FILTERS)
    scope = visible_to(who)
    if scope:
        query.update(scope)
    tickets = await request.app[TICKETS].search(query, after=None, limit=QUEUE_LIMIT)
    agents = [a.name for a in await request.app[ACCOUNTS].all() if a.role != "viewer"]
    template = "queue_rows.html" if request.query.get("fragment") else "queue.html"
    return page(
        request,
        template,
        page_name="tickets",
        tickets=tickets,
        filters=filters,
        views=views,
        chosen=str(chosen["_id"]) if chosen else "",
        statuses=STATUSES,
        priorities=PRIORITIES,
        agents=agents,
    )


# -- ticket ---------------------------------------------------------------------------------------------


async def ticket_page(request: web.Request, who: Principal) -> web.Response:
    repo = request.app[TICKETS]
    number = request.match_info["number"]
    try:
        ticket = await repo.get_by_number(number)
    except NotFound:
        return error_page(request, 404, "not_found")
    if not can_see_team(who, getattr(ticket, "team", None)):
        return error_page(request, 404, "not_found")
    events = await repo.events(ticket.id)
    db = request.app[DATABASE].db
    customer = await db.customers.find_one({"_id": _oid(ticket.requester)}) if ticket.requester else None
    context: dict[str, Any] = {
        "page_name": "tickets",
        "ticket": ticket,
        "events": events,
        "customer": customer or {},
    }
    if request.query.get("fragment"):
        return page(request, "conversation.html", **context)
    macros = [m async for m in db.macros.find({}, {"_id": 0}).sort("name", 1).limit(200)]
    agents = [a.name for a in await request.app[ACCOUNTS].all() if a.role != "viewer" and not a.disabled]
    return page(
        request,
        "ticket.html",
        statuses=STATUSES,
        priorities=PRIORITIES,
        agents=agents,
        macros_json=script_json(macros),
        **context,
    )


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no `</script>` or `<!--` can end it early."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _oid(value: str) -> Any:
    from bson import ObjectId
    from bson.errors import InvalidId

    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


# -- simple pages: a shell that the page's script fills from the API ---------------------------------------


def shell(name: str) -> Handler:
    async def handler(request: web.Request, who: Principal) -> web.Response:
        return page(request, f"{name}.html", page_name=name)

    return handler


# -- live updates (server-sent events) -------------------------------------------------------------------


async def stream(request: web.Request) -> web.StreamResponse:
    who = maybe_principal(request)
    if who is None:
        return web.Response(status=401, text="log in first", content_type="text/plain")
    feed = request.app[LIVE]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    queue = feed.subscribe()
    try:
        await response.write(b"retry: 3000\n\n")
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item.get("type") == "closing":
                break
            if not can_see_team(who, item.get("team")):
                continue
            data = json.dumps({k: v for k, v in item.items() if k != "team"}, ensure_ascii=False)
            await response.write(f"event: ticket\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        feed.unsubscribe(queue)
    return response


# -- static files ---------------------------------------------------------------------------------------

_TYPES = {".js": "text/javascript", ".css": "text/css"}


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        return web.Response(status=404, text="not found", content_type="text/plain")
    return web.Response(
        body=path.read_bytes(),
        content_type=_TYPES[path.suffix],
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def routes() -> list[web.RouteDef]:
    out = [
        web.get("/admin", home),
        web.get("/admin/", home),
        web.get("/admin/login", login.login_form),
        web.post("/admin/login", login.login_submit),
        web.post("/admin/logout", login.logout),
        web.get("/admin/setup/{token}", login.setup_form),
        web.post("/admin/setup/{token}", login.setup_submit),
        web.get("/admin/static/{name}", static),
        web.get("/admin/stream", stream),
        web.get("/admin/tickets", signed_in(queue)),
        web.get("/admin/tickets/{number}", signed_in(ticket_page)),
        web.get("/admin/dashboard", signed_in(shell("dashboard"))),
    ]
    out += [web.get(f"/admin/{name}", signed_in(shell(name), admin=True)) for name in ADMIN_PAGES]
    return out
