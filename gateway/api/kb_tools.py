"""Knowledge tools for the console: a Markdown preview rendered exactly like the public article page,
and the effect of proposed matching settings on the last N real customer queries (`match_log`) and
deflections."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from gateway.api.matching import settings_from_json
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import DATABASE, KNOWLEDGE
from gateway.kb_pages import render_markdown
from ticket_core.errors import InvalidInput

routes = web.RouteTableDef()
MAX_BODY = 200_000
MAX_QUERIES = 1000
# Matching holds the GIL: yield to the event loop between small batches of replayed queries.
BATCH = 25


@routes.post("/api/v1/articles/preview")
async def preview_article(request: web.Request) -> web.Response:
    body = (await read_json_object(request)).get("body")
    if not isinstance(body, str) or len(body) > MAX_BODY:
        raise InvalidInput("body must be Markdown text", code="invalid_fields", fields={"body": "a string"})
    return json_response({"html": render_markdown(body)})


def _n(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUERIES:
        raise InvalidInput(
            "n must be a whole number from 1 to 1000", code="invalid_fields", fields={"n": f"1-{MAX_QUERIES}"}
        )
    return value


@routes.post("/api/v1/settings/matching/impact")
async def matching_impact(request: web.Request) -> web.Response:
    """How many of the last `n` matched queries would get suggestions, and how many of the last `n`
    deflections would still have been offered the article that solved them, now and as proposed."""
    body = await read_json_object(request)
    n = _n(body.get("n", 200))
    proposed_raw = body.get("settings") or {}
    if not isinstance(proposed_raw, dict):
        raise InvalidInput("settings must be an object", code="invalid_fields", fields={"settings": "object"})
    kb = request.app[KNOWLEDGE]
    current = kb.settings
    proposed = settings_from_json(current, proposed_raw, prefix="settings.")
    db = request.app[DATABASE].db
    queries = [d async for d in db.match_log.find({}, {"q": 1, "locale": 1}).sort("_id", -1).limit(n)]
    deflections = [
        d
        async for d in db.deflections.find({"query": {"$nin": ["", None]}}, {"query": 1, "article_id": 1})
        .sort("at", -1)
        .limit(n)
    ]
    result: dict[str, Any] = {"n": n, "queries": len(queries), "deflections": len(deflections)}
    for label, settings in (("current", current), ("proposed", proposed)):
        suggested = 0
        for i, q in enumerate(queries):
            if kb.suggest(str(q["q"]), locale=q.get("locale"), settings=settings):
                suggested += 1
            if i % BATCH == BATCH - 1:
                await asyncio.sleep(0)
        kept = 0
        for i, d in enumerate(deflections):
            found = kb.suggest(str(d["query"]), settings=settings)
            kept += any(s.article_id == d["article_id"] for s in found)
            if i % BATCH == BATCH - 1:
                await asyncio.sleep(0)
        result[label] = {"suggested": suggested, "deflected": kept, "threshold": settings.threshold}
    return json_response(result)
