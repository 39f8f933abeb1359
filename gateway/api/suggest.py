"""Public knowledge endpoints the web form and article pages call: suggestions while a customer types,
"this solved my problem" (a deflection: no ticket), and helpful / not helpful feedback.

No authentication (customers have no token), so each is rate-limited per client address.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from dialog.knowledge import LOCALES
from gateway.api.ratelimit import TokenBucketLimiter
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import KNOWLEDGE
from ticket_core.errors import InvalidInput

MAX_QUERY = 500
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{8,100}$")


def _field_error(name: str, message: str) -> InvalidInput:
    return InvalidInput(f"{name} {message}", code="invalid_fields", fields={name: message})


def _text(body: dict[str, Any], name: str, *, required: bool, pattern: re.Pattern[str] | None = None) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise _field_error(name, "is required")
        return ""
    if not isinstance(value, str):
        raise _field_error(name, "must be text")
    if pattern is not None and not pattern.match(value):
        raise _field_error(name, "has characters or a length that are not allowed")
    return value[:MAX_QUERY]


class PublicKnowledgeApi:
    def __init__(self, limiter: TokenBucketLimiter) -> None:
        self._limiter = limiter

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/suggest", self.suggest),
            web.post("/api/v1/deflections", self.deflect),
            web.post("/api/v1/articles/{id}/feedback", self.feedback),
        ]

    async def suggest(self, request: web.Request) -> web.Response:
        if (limited := self._limiter.check(request)) is not None:
            return limited
        query = request.query.get("q", "").strip()[:MAX_QUERY]
        locale = request.query.get("locale") or None
        if locale is not None and locale not in LOCALES:
            raise _field_error("locale", f"must be one of {', '.join(LOCALES)}")
        if not query:
            return json_response({"items": []})
        suggestions = request.app[KNOWLEDGE].suggest(query, locale=locale)
        return json_response(
            {
                "items": [
                    {k: v for k, v in s.to_dict().items() if k in ("id", "title", "score", "url", "summary")}
                    for s in suggestions
                ]
            }
        )

    async def deflect(self, request: web.Request) -> web.Response:
        """The customer read an article from the form and it solved the problem: count it, make no
        ticket. `key` (the form page's own random key) makes a double click count once."""
        if (limited := self._limiter.check(request)) is not None:
            return limited
        body = await read_json_object(request)
        article_id = _text(body, "article_id", required=True, pattern=NAME_RE)
        form = _text(body, "form", required=False, pattern=NAME_RE) or "support"
        query = _text(body, "query", required=False)
        page_key = _text(body, "key", required=False, pattern=KEY_RE)
        kb = request.app[KNOWLEDGE]
        await kb.get(article_id)  # 404 for an unknown article, before anything is counted
        conversation = f"webform:{form}:{page_key or request.remote or 'unknown'}"
        recorded = await kb.record_deflection(
            article_id,
            channel="webform",
            conversation_key=conversation,
            query=query,
            key=f"webform:{form}:{page_key}:{article_id}" if page_key else None,
        )
        return json_response(
            {"recorded": recorded, "article_id": article_id, "ticket": None}, status=201 if recorded else 200
        )

    async def feedback(self, request: web.Request) -> web.Response:
        if (limited := self._limiter.check(request)) is not None:
            return limited
        body = await read_json_object(request)
        helpful = body.get("helpful")
        if not isinstance(helpful, bool):
            raise _field_error("helpful", "must be true or false")
        kb = request.app[KNOWLEDGE]
        article = await kb.get(request.match_info["id"])
        await kb.record_feedback(article["_id"], helpful=helpful)
        return json_response({"recorded": True, "article_id": article["_id"], "helpful": helpful})
