"""Authentication for `/api/v1` and `/admin`: bearer tokens (integrations) or console sessions (cookie
plus a CSRF token on every state-changing request), then scope and role checks.

Role rules live here, in one table, so the authorisation matrix test has one place to agree with:
viewers read, agents also work tickets, admins also change settings, accounts and integrations.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.accounts.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, csrf_matches
from gateway.appkeys import ACCOUNTS, PRINCIPAL, SESSIONS, TOKENS
from gateway.http_errors import error_response
from gateway.tokens import Principal

PUBLIC_API = ("/api/v1/openapi.json", "/api/v1/suggest", "/api/v1/deflections")
# Customers' feedback on an article comes from public pages (rate-limited there, not authenticated).
PUBLIC_API_PATTERN = re.compile(r"^/api/v1/articles/[^/]+/feedback$")
WRITE_ROLES = ("admin", "agent")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Areas (the first segment after /api/v1/) where writing is an administrative change.
# Teams and agents' routing profiles (issue 7's /api/v1/teams, /api/v1/agents) check roles in their
# handlers: an agent may switch their own on-line state there.
ADMIN_WRITE_AREAS = frozenset(
    {
        "articles",
        "settings",
        "rules",
        "templates",
        "macros",
        "accounts",
        "tokens",
        "webhooks",
        "routing-rules",
        "sla-policies",
        "business-hours",
        "notification-settings",
    }
)
# Areas only admins may even read: accounts and credentials, the audit trail, integration endpoints.
ADMIN_READ_AREAS = frozenset({"accounts", "tokens", "audit", "webhooks"})
# Every role may change its own preferences (language, password): that changes nothing in the desk.
SELF_SERVICE = frozenset({"/api/v1/me"})


def api_area(path: str) -> str:
    return path[len("/api/v1/") :].split("/", 1)[0]


async def _session_principal(request: web.Request) -> Principal | None:
    sessions = request.app.get(SESSIONS)
    value = request.cookies.get(COOKIE)
    if sessions is None or not value:
        return None
    session = await sessions.get(value)
    if session is None:
        return None
    account = await request.app[ACCOUNTS].find(session.agent)
    if account is None or account.disabled:
        return None
    return Principal(
        name=account.name,
        role=account.role,  # type: ignore[arg-type]
        token_id=f"session:{account.name}",
        teams=None if account.role == "admin" else account.teams,
        via="session",
        csrf=session.csrf,
        locale=account.locale,
    )


async def _csrf_ok(request: web.Request, who: Principal) -> bool:
    if request.method in SAFE_METHODS or who.via != "session":
        return True
    given = request.headers.get(CSRF_HEADER)
    if not given and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    return csrf_matches(who.csrf, given)


def _csrf_refused() -> web.Response:
    return error_response(403, "csrf_failed", f"a state-changing request needs the {CSRF_HEADER} header")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path == "/admin" or path.startswith("/admin/"):
        who = await _session_principal(request)
        if who is not None:
            if not await _csrf_ok(request, who):
                return _csrf_refused()
            request[PRINCIPAL] = who
        return await handler(request)  # pages send anonymous people to the login page themselves
    public = path in PUBLIC_API or PUBLIC_API_PATTERN.match(path) is not None
    if not path.startswith("/api/v1/") or public or request.method == "OPTIONS":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("a bearer token is required (omnigate token create)")
        found = await request.app[TOKENS].authenticate(token.strip())
        if found is None:
            return error_response(
                401,
                "unauthorized",
                "the token is unknown or revoked",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        who = found
    else:
        session_who = await _session_principal(request)
        if session_who is None:
            return _unauthorized("a bearer token or a console session is required")
        who = session_who
        if not await _csrf_ok(request, who):
            return _csrf_refused()
    refusal = refusal_for(request.method, path, who)
    if refusal:
        return error_response(403, "forbidden", refusal)
    request[PRINCIPAL] = who
    return await handler(request)


def refusal_for(method: str, path: str, who: Principal) -> str | None:
    """Why `who` may not make this API call, or None."""
    area = api_area(path)
    write = method not in SAFE_METHODS
    if not who.allows(area, write):
        return f"the token's scopes do not allow {'writing' if write else 'reading'} {area}"
    if path in SELF_SERVICE:
        return None
    if area in ADMIN_READ_AREAS and who.role != "admin":
        return f"the {who.role} role cannot see {area}"
    if write and who.role not in WRITE_ROLES:
        return f"the {who.role} role cannot change anything"
    if write and area in ADMIN_WRITE_AREAS and who.role != "admin" and not _admin_read_post(path):
        return f"the {who.role} role cannot change {area}"
    return None


def _admin_read_post(path: str) -> bool:
    # POSTs that change nothing (previews, dry runs) are open to agents where a handler allows it.
    return path.endswith(("/preview", "/dry-run"))


def _unauthorized(message: str) -> web.Response:
    return error_response(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="omnigate"'}
    )


def principal(request: web.Request) -> Principal:
    value = request.get(PRINCIPAL)
    assert isinstance(value, Principal), "route is not behind auth_middleware"
    return value


def maybe_principal(request: web.Request) -> Principal | None:
    value = request.get(PRINCIPAL)
    return value if isinstance(value, Principal) else None


def require_role(request: web.Request, *roles: str) -> None:
    """For routes narrower than the middleware's rule (articles and matching settings: admin only)."""
    who = principal(request)
    if who.role not in roles:
        raise web.HTTPForbidden(reason="Forbidden", text=f"the {who.role} role cannot do this")


def client_address(request: web.Request) -> str:
    """The TCP peer, deliberately not X-Forwarded-For (anyone can set it)."""
    return request.remote or "unknown"


def actor_name(request: web.Request) -> str:
    who = maybe_principal(request)
    return who.name if who else "anonymous"


def audit_via(who: Principal) -> str:
    return "session" if who.via == "session" else f"token:{who.token_id}"


def visible_to(who: Principal) -> dict[str, Any] | None:
    """The ticket filter for `who`: None sees all; otherwise its teams' tickets and those with no team."""
    if who.teams is None:
        return None
    # `$in` with None rather than `$or`: the embedded database scans the whole collection for an `$or`.
    return {"team": {"$in": [*who.teams, None]}}


def can_see_team(who: Principal, team: str | None) -> bool:
    return who.teams is None or not team or team in who.teams
