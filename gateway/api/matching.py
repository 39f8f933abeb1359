"""Admin tuning of knowledge matching: read and change the settings, and the "try it" endpoint that
scores a query under the current settings and, side by side, under proposed ones."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from aiohttp import web

from dialog.knowledge import LOCALES
from dialog.matcher import Match, MatchSettings
from dialog.matcher_settings import FIELD_NAMES
from gateway.api.auth import principal, require_role
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import KNOWLEDGE
from ticket_core.errors import InvalidInput

MAX_SUGGESTIONS = 20
MAX_LIST = 5_000
TRY_LIMIT = 10

routes = web.RouteTableDef()


def _number(value: Any) -> float | None:
    # bool is an int in Python, but `true` is not a threshold
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _strings(value: Any) -> list[str] | None:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        return None
    if not all(isinstance(v, str) and v.strip() and len(v) <= 200 for v in value):
        return None
    return [v.strip() for v in value]


def _threshold(value: Any) -> tuple[Any, str | None]:
    number = _number(value)
    if number is None or not 0 <= number <= 100:
        return None, "must be a number from 0 to 100"
    return number, None


def _max_suggestions(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SUGGESTIONS:
        return None, f"must be a whole number from 1 to {MAX_SUGGESTIONS}"
    return value, None


def _field_weights(value: Any) -> tuple[Any, str | None]:
    message = f"must be an object of {', '.join(FIELD_NAMES)} to numbers from 0 to 10"
    if not isinstance(value, dict) or set(value) - set(FIELD_NAMES):
        return None, message
    weights = {k: _number(v) for k, v in value.items()}
    if any(w is None or not 0 <= w <= 10 for w in weights.values()):
        return None, message
    return weights, None


def _synonyms(value: Any) -> tuple[Any, str | None]:
    message = "must be an object of a term to a list of equivalent terms"
    if not isinstance(value, dict) or len(value) > MAX_LIST:
        return None, message
    cleaned: dict[str, list[str]] = {}
    for head, equivalents in value.items():
        terms = _strings(equivalents)
        if not head.strip() or len(head) > 200 or terms is None:
            return None, message
        cleaned[head.strip()] = terms
    return cleaned, None


def _stop_words(value: Any) -> tuple[Any, str | None]:
    words = _strings(value)
    if words is None:
        return None, "must be a list of words"
    return frozenset(words), None


def _category_boosts(value: Any) -> tuple[Any, str | None]:
    message = "must be an object of a category to a factor above 0 and at most 10"
    if not isinstance(value, dict) or len(value) > MAX_LIST:
        return None, message
    boosts = {k.strip(): _number(v) for k, v in value.items()}
    if any(not k or b is None or not 0 < b <= 10 for k, b in boosts.items()):
        return None, message
    return boosts, None


def _locale_thresholds(value: Any) -> tuple[Any, str | None]:
    message = f"must be an object of a locale ({', '.join(LOCALES)}) to a number from 0 to 100"
    if not isinstance(value, dict) or set(value) - set(LOCALES):
        return None, message
    thresholds = {k: _number(v) for k, v in value.items()}
    if any(t is None or not 0 <= t <= 100 for t in thresholds.values()):
        return None, message
    return thresholds, None


_PARSERS: dict[str, Callable[[Any], tuple[Any, str | None]]] = {
    "threshold": _threshold,
    "max_suggestions": _max_suggestions,
    "field_weights": _field_weights,
    "synonyms": _synonyms,
    "stop_words": _stop_words,
    "category_boosts": _category_boosts,
}
# Per-locale thresholds (Chinese queries score lower for an equally good match) exist in the matcher
# settings being polished now; accept them whenever the settings have them.
if "locale_thresholds" in {f.name for f in fields(MatchSettings)}:
    _PARSERS["locale_thresholds"] = _locale_thresholds


def threshold_for(settings: MatchSettings, locale: str) -> float:
    """The threshold that decides whether an article of `locale` is suggested."""
    per_locale = getattr(settings, "threshold_for", None)
    return float(per_locale(locale)) if callable(per_locale) else settings.threshold


def settings_from_json(
    current: MatchSettings, changes: Mapping[str, Any], *, prefix: str = ""
) -> MatchSettings:
    """`current` with the given keys replaced; InvalidInput names every bad field.
    A key that is present replaces the whole value (an object of weights is the complete set)."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, raw in changes.items():
        parse = _PARSERS.get(name)
        if parse is None:
            errors[prefix + name] = "unknown setting"
            continue
        value, problem = parse(raw)
        if problem:
            errors[prefix + name] = problem
        else:
            values[name] = value
    if errors:
        raise InvalidInput("the matching settings have invalid fields", code="invalid_fields", fields=errors)
    try:
        return current.with_changes(**values)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_fields", fields={prefix or "settings": str(exc)}) from exc


def settings_view(settings: MatchSettings) -> dict[str, Any]:
    return settings.to_doc()


@routes.get("/api/v1/settings/matching")
async def get_matching(request: web.Request) -> web.Response:
    return json_response(settings_view(request.app[KNOWLEDGE].settings))


@routes.put("/api/v1/settings/matching")
async def put_matching(request: web.Request) -> web.Response:
    require_role(request, "admin")
    kb = request.app[KNOWLEDGE]
    body = await read_json_object(request)
    settings = settings_from_json(kb.settings, body)
    await kb.save_settings(settings, actor=principal(request).name)
    return json_response(settings_view(settings))


def _locale(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if value not in LOCALES:
        raise InvalidInput(
            f"locale must be one of {', '.join(LOCALES)}",
            code="invalid_fields",
            fields={"locale": f"must be one of {', '.join(LOCALES)}"},
        )
    return str(value)


def _ranked(matches: list[Match], settings: MatchSettings, url: Callable[[str], str]) -> dict[str, Any]:
    """The ranking as a customer would meet it: `suggested` marks the first `max_suggestions` articles
    at or above their locale's threshold."""
    items: list[dict[str, Any]] = []
    offered = 0
    for m in matches:
        threshold = threshold_for(settings, m.locale)
        suggested = offered < settings.max_suggestions and m.score >= threshold
        offered += suggested
        items.append(
            {
                **m.to_dict(),
                "id": m.article_id,
                "url": url(m.article_id),
                "threshold": threshold,
                "suggested": suggested,
            }
        )
    return {"threshold": settings.threshold, "max_suggestions": settings.max_suggestions, "items": items}


@routes.post("/api/v1/articles/match")
async def try_match(request: web.Request) -> web.Response:
    """Every article that scores at all (not only those above the threshold), with why, so an admin
    sees what a change of threshold or weights would let through."""
    require_role(request, "admin")
    kb = request.app[KNOWLEDGE]
    body = await read_json_object(request)
    query = body.get("q")
    if not isinstance(query, str) or not query.strip() or len(query) > 2000:
        raise InvalidInput(
            "q is required (at most 2000 characters)",
            code="invalid_fields",
            fields={"q": "is required, at most 2000 characters"},
        )
    locale = _locale(body.get("locale"))
    proposed_raw = body.get("settings")
    if proposed_raw is not None and not isinstance(proposed_raw, dict):
        raise InvalidInput(
            "settings must be an object", code="invalid_fields", fields={"settings": "must be an object"}
        )
    current = kb.settings
    answer: dict[str, Any] = {
        "q": query,
        "locale": locale,
        "current": _ranked(
            kb.explain(query, locale=locale, settings=current, limit=TRY_LIMIT), current, kb.url
        ),
    }
    if proposed_raw:
        proposed = settings_from_json(current, proposed_raw, prefix="settings.")
        answer["proposed"] = _ranked(
            kb.explain(query, locale=locale, settings=proposed, limit=TRY_LIMIT), proposed, kb.url
        )
        answer["proposed_settings"] = settings_view(proposed)
    return json_response(answer)
