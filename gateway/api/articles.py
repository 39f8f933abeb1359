"""REST API for knowledge articles: list, read with stats, create, upsert, delete, version history.
Reads are open to every role; writes are for admins (an article is what customers are told)."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from dialog.knowledge import LOCALES
from gateway.api.auth import principal, require_role
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import KNOWLEDGE
from ticket_core.errors import Conflict, InvalidInput

MAX_LIMIT = 200
FILTERS = ("locale", "category", "published", "q", "limit", "cursor")

routes = web.RouteTableDef()


def _bad(name: str, message: str) -> InvalidInput:
    return InvalidInput(f"{name} {message}", code="invalid_filter", fields={name: message})


def _published(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise _bad("published", "must be true or false")


def _limit(value: str | None) -> int:
    try:
        limit = int(value or "50")
    except ValueError as exc:
        raise _bad("limit", "must be a number") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def article_view(doc: dict[str, Any], url: str) -> dict[str, Any]:
    stats = {"views": 0, "helpful": 0, "not_helpful": 0, "deflections": 0, **doc.get("stats", {})}
    stats.setdefault("deflections_by_channel", {})
    return {**doc, "url": url, "stats": stats}


@routes.get("/api/v1/articles")
async def list_articles(request: web.Request) -> web.Response:
    query = request.query
    unknown = set(query) - set(FILTERS)
    if unknown:
        name = sorted(unknown)[0]
        raise _bad(name, f"is not a filter (use {', '.join(FILTERS)})")
    locale = query.get("locale") or None
    if locale is not None and locale not in LOCALES:
        raise _bad("locale", f"must be one of {', '.join(LOCALES)}")
    limit = _limit(query.get("limit"))
    kb = request.app[KNOWLEDGE]
    docs = await kb.search(
        locale=locale,
        category=query.get("category") or None,
        published=_published(query.get("published")),
        text=(query.get("q") or "").strip() or None,
        after=query.get("cursor") or None,
        limit=limit + 1,
    )
    more = len(docs) > limit
    docs = docs[:limit]
    return json_response(
        {
            "items": [article_view(d, kb.url(d["_id"])) for d in docs],
            "next": docs[-1]["_id"] if more else None,
        }
    )


@routes.get("/api/v1/articles/{id}")
async def get_article(request: web.Request) -> web.Response:
    kb = request.app[KNOWLEDGE]
    doc = await kb.get(request.match_info["id"])
    return json_response(article_view(doc, kb.url(doc["_id"])))


async def _save(request: web.Request, body: dict[str, Any], *, create_only: bool) -> web.Response:
    kb = request.app[KNOWLEDGE]
    ident = str(body.get("id") or body.get("slug") or "").strip()
    if create_only and ident and await kb.exists(ident):
        raise Conflict(f"an article {ident!r} exists already; PUT /api/v1/articles/{ident} changes it")
    try:
        doc, outcome = await kb.save(body, actor=principal(request).name)
    except DuplicateKeyError as exc:  # two creations of one id at the same moment
        raise Conflict(f"an article {ident!r} was created concurrently; retry") from exc
    status = 201 if outcome == "created" else 200
    headers = {"Location": f"/api/v1/articles/{doc['_id']}"}
    response = json_response({**article_view(doc, kb.url(doc["_id"])), "outcome": outcome}, status=status)
    response.headers.update(headers)
    return response


@routes.post("/api/v1/articles")
async def create_article(request: web.Request) -> web.Response:
    require_role(request, "admin")
    body = await read_json_object(request)
    if not body.get("id") and not body.get("slug"):
        # Titles are often Chinese, so an id is not derived from them; a short random one is stable.
        body["id"] = "a-" + secrets.token_hex(5)
    return await _save(request, body, create_only=True)


@routes.put("/api/v1/articles/{id}")
async def put_article(request: web.Request) -> web.Response:
    require_role(request, "admin")
    body = await read_json_object(request)
    ident = request.match_info["id"]
    given = body.get("id") or body.get("slug")
    if given is not None and given != ident:
        raise InvalidInput(
            "the id in the body differs from the one in the path",
            code="invalid_fields",
            fields={"id": f"must be {ident!r} (or left out)"},
        )
    body.pop("slug", None)
    body["id"] = ident
    return await _save(request, body, create_only=False)


@routes.delete("/api/v1/articles/{id}")
async def delete_article(request: web.Request) -> web.Response:
    require_role(request, "admin")
    await request.app[KNOWLEDGE].delete(request.match_info["id"])
    return web.Response(status=204)


@routes.get("/api/v1/articles/{id}/versions")
async def article_versions(request: web.Request) -> web.Response:
    kb = request.app[KNOWLEDGE]
    current = await kb.get(request.match_info["id"])
    history = await kb.versions(current["_id"])
    return json_response(
        {
            "current": current.get("version", 1),
            "items": [
                {
                    "version": h["version"],
                    "replaced_at": h.get("replaced_at"),
                    "replaced_by": h.get("replaced_by"),
                    "article": h.get("snapshot", {}),
                }
                for h in history
            ],
            "next": None,
        }
    )
