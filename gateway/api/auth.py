"""Bearer-token authentication for `/api/v1`, and role checks for writes."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.appkeys import PRINCIPAL, TOKENS
from gateway.http_errors import error_response
from gateway.tokens import Principal

PUBLIC_API = ("/api/v1/openapi.json", "/api/v1/suggest", "/api/v1/deflections")
# Customers' feedback on an article comes from public pages (rate-limited there, not authenticated).
PUBLIC_API_PATTERN = re.compile(r"^/api/v1/articles/[^/]+/feedback$")
WRITE_ROLES = ("admin", "agent")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    public = path in PUBLIC_API or PUBLIC_API_PATTERN.match(path) is not None
    if not path.startswith("/api/v1/") or public or request.method == "OPTIONS":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error_response(
            401,
            "unauthorized",
            "a bearer token is required (omnigate token create)",
            headers={"WWW-Authenticate": 'Bearer realm="omnigate"'},
        )
    principal = await request.app[TOKENS].authenticate(token.strip())
    if principal is None:
        return error_response(
            401,
            "unauthorized",
            "the token is unknown or revoked",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if request.method not in ("GET", "HEAD") and principal.role not in WRITE_ROLES:
        return error_response(403, "forbidden", f"the {principal.role} role cannot change anything")
    request[PRINCIPAL] = principal
    return await handler(request)


def principal(request: web.Request) -> Principal:
    value = request.get(PRINCIPAL)
    assert isinstance(value, Principal), "route is not behind auth_middleware"
    return value


def require_role(request: web.Request, *roles: str) -> None:
    """For routes narrower than the middleware's rule (articles and matching settings: admin only)."""
    who = principal(request)
    if who.role not in roles:
        raise web.HTTPForbidden(reason="Forbidden", text=f"the {who.role} role cannot do this")
