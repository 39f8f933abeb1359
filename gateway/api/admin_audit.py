"""Audit records for administrative changes made through the API.

New admin endpoints record their own before/after. Older admin endpoints (articles, matching settings,
rules, and routing/SLA endpoints as they land) are covered by `audit_middleware`, which loads the
resource before the change where it knows how, and records the answer as the value after.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api.auth import SAFE_METHODS, api_area, audit_via, client_address, maybe_principal
from gateway.appkeys import AUDIT, DATABASE, KNOWLEDGE

# Areas whose handlers write their own, richer audit records.
SELF_AUDITED = frozenset({"accounts", "tokens", "templates", "macros", "webhooks", "me"})
AUDITED_AREAS = frozenset(
    {
        "articles",
        "settings",
        "rules",
        "agents",
        "teams",
        "routing-rules",
        "sla-policies",
        "business-hours",
        "notification-settings",
        "reports",
    }
)
# Writes that change nothing: previews, dry runs, the matcher's try-it, customers' feedback.
NOT_CHANGES = re.compile(r"(/preview|/dry-run|/replay|/match|/impact|/feedback)$")

Loader = Callable[[web.Request], Awaitable[Any]]


async def _article(request: web.Request) -> Any:
    parts = request.path.split("/")
    return await request.app[DATABASE].db.articles.find_one({"_id": parts[4]}) if len(parts) == 5 else None


async def _matching(request: web.Request) -> Any:
    return request.app[KNOWLEDGE].settings.to_doc()


async def _rule(request: web.Request) -> Any:
    from bson import ObjectId
    from bson.errors import InvalidId

    try:
        return await request.app[DATABASE].db.rules.find_one({"_id": ObjectId(request.path.split("/")[4])})
    except (InvalidId, IndexError):
        return None


BEFORE: list[tuple[re.Pattern[str], Loader]] = [
    (re.compile(r"^/api/v1/articles/[^/]+$"), _article),
    (re.compile(r"^/api/v1/settings/matching$"), _matching),
    (re.compile(r"^/api/v1/rules/[^/]+$"), _rule),
]


async def record(
    request: web.Request, action: str, target: str, before: Any = None, after: Any = None, outcome: str = "ok"
) -> None:
    who = maybe_principal(request)
    await request.app[AUDIT].record(
        actor=who.name if who else "anonymous",
        action=action,
        target=target,
        before=_plain(before),
        after=_plain(after),
        address=client_address(request),
        outcome=outcome,
        via=audit_via(who) if who else "",
    )


def maybe_principal_name(request: web.Request) -> str:
    who = maybe_principal(request)
    return who.name if who else "anonymous"


def _plain(value: Any) -> Any:
    """Whatever the value, something MongoDB stores (ids and dates as strings)."""
    if value is None:
        return None
    from gateway.api.tickets import _jsonable

    return json.loads(json.dumps(_jsonable(value), default=str))


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (
        request.method in SAFE_METHODS
        or not request.path.startswith("/api/v1/")
        or api_area(request.path) not in AUDITED_AREAS
        or NOT_CHANGES.search(request.path)
    ):
        return await handler(request)
    before = None
    for pattern, load in BEFORE:
        if pattern.match(request.path):
            before = await load(request)
            break
    response = await handler(request)
    if response.status < 400 and maybe_principal(request) is not None:
        after: Any = None
        if (
            isinstance(response, web.Response)
            and response.body
            and response.content_type == "application/json"
        ):
            try:
                after = json.loads(bytes(response.body))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                after = None
        await record(request, f"{request.method} {_route(request)}", request.path, before, after)
    return response


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else request.path
