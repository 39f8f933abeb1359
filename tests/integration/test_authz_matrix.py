"""Every route under /api/v1 and /admin, called as anonymous, viewer, an agent of another team, an agent
of the ticket's team, and an admin: each answer must match the table below, and the table must name
every route the app has (a new route without a row fails this test).

A cell is an exact status, or ALLOWED: anything but 401/403 (validation errors and missing objects are
fine: the caller got past authorisation). Console callers use a session cookie plus the CSRF header;
requests that change something carry a `{}` JSON body.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.appkeys import SESSIONS
from tests.console_helpers import make_account
from tests.helpers import running_app

ALLOWED = "allowed"
ROLES = ("anonymous", "viewer", "other_agent", "agent", "admin")
FORM = {"subject": "Printer jams", "description": "It jams on page two.", "email": "c@example.com"}

# (anonymous, viewer, agent of another team, agent of the ticket's team, admin)
PUBLIC = (ALLOWED,) * 5
READ = (401, ALLOWED, ALLOWED, ALLOWED, ALLOWED)
AGENT_WRITE = (401, 403, ALLOWED, ALLOWED, ALLOWED)
ADMIN = (401, 403, 403, 403, ALLOWED)
TEAM_READ = (401, 200, 404, 200, 200)
TEAM_WRITE = (401, 403, 404, ALLOWED, ALLOWED)
SELF = (401, ALLOWED, ALLOWED, ALLOWED, ALLOWED)
PAGE = (303, 200, 200, 200, 200)
ADMIN_PAGE = (303, 403, 403, 403, 200)
TEAM_PAGE = (303, 200, 404, 200, 200)
STREAM = (401, 200, 200, 200, 200)
FORM_WITHOUT_TOKEN = (403, 403, 403, 403, 403)  # login form posted without its double-submit token
REDIRECT = (303, 303, 303, 303, 303)

TABLE: dict[tuple[str, str], tuple[Any, ...]] = {
    # public API
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/suggest"): PUBLIC,
    ("POST", "/api/v1/deflections"): PUBLIC,
    ("POST", "/api/v1/articles/{id}/feedback"): PUBLIC,
    # tickets (team-scoped)
    ("GET", "/api/v1/tickets"): READ,
    ("GET", "/api/v1/tickets/{number}"): TEAM_READ,
    ("PATCH", "/api/v1/tickets/{number}"): TEAM_WRITE,
    ("POST", "/api/v1/tickets/{number}/replies"): TEAM_WRITE,
    ("GET", "/api/v1/tickets/{number}/deliveries"): TEAM_READ,
    ("GET", "/api/v1/tickets/{number}/attachments/{file_id}"): (401, 404, 404, 404, 404),
    ("GET", "/api/v1/outbox"): READ,
    # knowledge
    ("GET", "/api/v1/articles"): READ,
    ("POST", "/api/v1/articles"): ADMIN,
    ("GET", "/api/v1/articles/{id}"): READ,
    ("PUT", "/api/v1/articles/{id}"): ADMIN,
    ("DELETE", "/api/v1/articles/{id}"): ADMIN,
    ("GET", "/api/v1/articles/{id}/versions"): READ,
    ("POST", "/api/v1/articles/match"): ADMIN,
    ("POST", "/api/v1/articles/preview"): AGENT_WRITE,
    ("GET", "/api/v1/settings/matching"): READ,
    ("PUT", "/api/v1/settings/matching"): ADMIN,
    ("POST", "/api/v1/settings/matching/impact"): ADMIN,
    # auto-reply rules
    ("GET", "/api/v1/rules"): READ,
    ("POST", "/api/v1/rules"): ADMIN,
    ("PUT", "/api/v1/rules/{id}"): ADMIN,
    ("DELETE", "/api/v1/rules/{id}"): ADMIN,
    ("POST", "/api/v1/rules/dry-run"): AGENT_WRITE,
    # people and access
    ("GET", "/api/v1/me"): READ,
    ("PATCH", "/api/v1/me"): SELF,
    ("GET", "/api/v1/accounts"): ADMIN,
    ("POST", "/api/v1/accounts"): ADMIN,
    ("GET", "/api/v1/accounts/{name}"): ADMIN,
    ("PATCH", "/api/v1/accounts/{name}"): ADMIN,
    ("DELETE", "/api/v1/accounts/{name}"): ADMIN,
    ("POST", "/api/v1/accounts/{name}/setup-link"): ADMIN,
    ("GET", "/api/v1/tokens"): ADMIN,
    ("POST", "/api/v1/tokens"): ADMIN,
    ("DELETE", "/api/v1/tokens/{id}"): ADMIN,
    ("GET", "/api/v1/audit"): ADMIN,
    # desk
    ("GET", "/api/v1/views"): READ,
    ("POST", "/api/v1/views"): AGENT_WRITE,
    ("DELETE", "/api/v1/views/{id}"): AGENT_WRITE,
    ("GET", "/api/v1/macros"): READ,
    ("PUT", "/api/v1/macros/{name}"): ADMIN,
    ("DELETE", "/api/v1/macros/{name}"): ADMIN,
    ("GET", "/api/v1/templates"): READ,
    ("POST", "/api/v1/templates/preview"): AGENT_WRITE,
    ("GET", "/api/v1/templates/{event}/{channel}/{locale}"): READ,
    ("PUT", "/api/v1/templates/{event}/{channel}/{locale}"): ADMIN,
    ("DELETE", "/api/v1/templates/{event}/{channel}/{locale}"): ADMIN,
    ("GET", "/api/v1/webhooks"): ADMIN,
    ("POST", "/api/v1/webhooks"): ADMIN,
    ("GET", "/api/v1/webhooks/{id}"): ADMIN,
    ("PATCH", "/api/v1/webhooks/{id}"): ADMIN,
    ("DELETE", "/api/v1/webhooks/{id}"): ADMIN,
    ("GET", "/api/v1/channels"): READ,
    ("GET", "/api/v1/dashboard"): READ,
    # ticket operations (issue 7): handlers check admin for changes; agents switch their own state only
    ("GET", "/api/v1/teams"): READ,
    ("POST", "/api/v1/teams"): ADMIN,
    ("PUT", "/api/v1/teams/{name}"): ADMIN,
    ("DELETE", "/api/v1/teams/{name}"): ADMIN,
    ("GET", "/api/v1/agents"): READ,
    ("POST", "/api/v1/agents"): ADMIN,
    ("PATCH", "/api/v1/agents/{name}"): ADMIN,  # "nobody" is not the agent themself
    ("GET", "/api/v1/routing-rules"): READ,
    ("POST", "/api/v1/routing-rules"): ADMIN,
    ("PUT", "/api/v1/routing-rules/{id}"): ADMIN,
    ("DELETE", "/api/v1/routing-rules/{id}"): ADMIN,
    ("POST", "/api/v1/routing-rules/dry-run"): AGENT_WRITE,
    ("POST", "/api/v1/routing-rules/replay"): ADMIN,
    ("GET", "/api/v1/sla-policies"): READ,
    ("POST", "/api/v1/sla-policies"): ADMIN,
    ("PUT", "/api/v1/sla-policies/{id}"): ADMIN,
    ("DELETE", "/api/v1/sla-policies/{id}"): ADMIN,
    ("GET", "/api/v1/business-hours"): READ,
    ("PUT", "/api/v1/business-hours"): ADMIN,
    ("GET", "/api/v1/notification-settings"): READ,
    ("PUT", "/api/v1/notification-settings"): ADMIN,
    ("GET", "/api/v1/tasks"): READ,
    ("PATCH", "/api/v1/tasks/{id}"): AGENT_WRITE,
    ("GET", "/api/v1/reports/summary"): READ,
    ("GET", "/api/v1/reports/backlog"): READ,
    ("POST", "/api/v1/reports/rebuild"): ADMIN,
    # console pages
    ("GET", "/admin"): REDIRECT,
    ("GET", "/admin/"): REDIRECT,
    ("GET", "/admin/login"): (200, 303, 303, 303, 303),
    ("POST", "/admin/login"): FORM_WITHOUT_TOKEN,
    ("POST", "/admin/logout"): REDIRECT,
    ("GET", "/admin/setup/{token}"): (404,) * 5,
    ("POST", "/admin/setup/{token}"): (404,) * 5,
    ("GET", "/admin/static/{name}"): (200,) * 5,
    ("GET", "/admin/stream"): STREAM,
    ("GET", "/admin/tickets"): PAGE,
    ("GET", "/admin/tickets/{number}"): TEAM_PAGE,
    ("GET", "/admin/dashboard"): PAGE,
    **{
        ("GET", f"/admin/{name}"): ADMIN_PAGE
        for name in ("kb", "matching", "rules", "routing", "templates", "channels", "agents", "audit")
    },
}

MISSING_ID = "0" * 24
PARAMS = {
    "id": MISSING_ID,
    "file_id": MISSING_ID,
    "name": "nobody",
    "event": "public_reply",
    "channel": "email",
    "locale": "en",
    "token": "not-a-setup-link",
}


def _routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "OPTIONS") or not (
            path.startswith("/api/v1/") or path.startswith("/admin")
        ):
            continue
        found.add((route.method, path))
    return found


def _url(path: str, number: str) -> str:
    if path == "/admin/static/{name}":
        return "/admin/static/console.js"
    return re.sub(r"\{(\w+)\}", lambda m: number if m.group(1) == "number" else PARAMS[m.group(1)], path)


def _ok(expected: Any, status: int) -> bool:
    return status not in (401, 403) if expected == ALLOWED else status == expected


async def test_every_route_answers_each_role_as_the_table_says(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        app_routes = _routes(client.app)
        missing = sorted(app_routes - set(TABLE))
        assert not missing, f"routes without a row in the authorisation table: {missing}"
        stale = sorted(set(TABLE) - app_routes)
        assert not stale, f"rows for routes that no longer exist: {stale}"

        await make_account(client, "vera", "viewer", teams=("printers",))
        await make_account(client, "otto", "agent", teams=("billing",))
        await make_account(client, "alice", "agent", teams=("printers",))
        await make_account(client, "root", "admin")
        names = {"viewer": "vera", "other_agent": "otto", "agent": "alice", "admin": "root"}
        created = await client.post("/forms/support", json=FORM)
        assert created.status == 201
        number = (await created.json())["ticket"]["number"]
        await mongo.tickets.update_one({"number": number}, {"$set": {"team": "printers"}})

        async def call(method: str, path: str, role: str) -> int:
            client.session.cookie_jar.clear()
            headers: dict[str, str] = {}
            if role != "anonymous":
                # A fresh session per call: logout ends the one it is called with.
                value, session = await client.app[SESSIONS].create(names[role])
                headers = {"Cookie": f"og_session={value}", "X-CSRF-Token": session.csrf}
            url = _url(path, number)
            if path == "/admin/stream":
                async with client.request(method, url, headers=headers) as resp:
                    return resp.status  # headers only: the stream itself never ends
            body = {} if method in ("POST", "PUT", "PATCH") and path.startswith("/api/") else None
            resp = await client.request(method, url, headers=headers, json=body, allow_redirects=False)
            await resp.release()
            return resp.status

        mismatches = []
        for (method, path), expected in sorted(TABLE.items()):
            for role, want in zip(ROLES, expected, strict=True):
                status = await call(method, path, role)
                if not _ok(want, status):
                    mismatches.append(f"{method} {path} as {role}: got {status}, expected {want}")
        assert not mismatches, "\n".join(mismatches)
