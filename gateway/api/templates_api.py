"""REST for notification templates: the packaged defaults, the admins' overrides (`templates`), and a
live preview of an unsaved draft with sample data, per event, channel and locale."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import jinja2
from aiohttp import web
from jinja2.sandbox import SandboxedEnvironment

from gateway.api import admin_audit
from gateway.api.tickets import json_response, read_json_object
from gateway.appkeys import DATABASE, RENDERER, SETTINGS
from gateway.notifier import _status_label
from gateway.templating import LOCALES, PARTS, TEMPLATE_ROOT
from ticket_core.errors import InvalidInput, NotFound

routes = web.RouteTableDef()
MAX_SOURCE = 20_000


def catalogue() -> tuple[list[str], list[str]]:
    """(events, channels) that have a packaged default; `default` applies to every channel."""
    events: set[str] = set()
    channels: set[str] = set()
    for path in TEMPLATE_ROOT.glob("*/*.j2"):
        channels.add(path.parent.name)
        events.add(path.name.split(".", 1)[0])
    return sorted(events), sorted(channels)


def _file(event: str, channel: str, locale: str, part: str) -> str | None:
    for folder in (channel, "default"):
        for loc in dict.fromkeys((locale, "en")):
            path = TEMPLATE_ROOT / folder / f"{event}.{loc}.{part}.j2"
            if path.is_file():
                return path.read_text(encoding="utf-8")
    return None


def _key(request: web.Request) -> tuple[str, str, str]:
    event, channel, locale = (request.match_info[k] for k in ("event", "channel", "locale"))
    events, channels = catalogue()
    if event not in events or channel not in channels or locale not in LOCALES:
        raise NotFound(f"no template {event}/{channel}/{locale}")
    return event, channel, locale


@routes.get("/api/v1/templates")
async def list_templates(request: web.Request) -> web.Response:
    events, channels = catalogue()
    overrides = {
        (d["event"], d["channel"], d["locale"]): d
        async for d in request.app[DATABASE].db.templates.find({}, {"_id": 0})
    }
    items = [
        {
            "event": e,
            "channel": c,
            "locale": loc,
            "overridden": (e, c, loc) in overrides,
            "updated_at": overrides.get((e, c, loc), {}).get("updated_at"),
            "updated_by": overrides.get((e, c, loc), {}).get("updated_by"),
        }
        for e in events
        for c in channels
        for loc in LOCALES
    ]
    return json_response(
        {"items": items, "events": events, "channels": channels, "locales": list(LOCALES), "next": None}
    )


@routes.get("/api/v1/templates/{event}/{channel}/{locale}")
async def get_template(request: web.Request) -> web.Response:
    event, channel, locale = _key(request)
    override = await request.app[DATABASE].db.templates.find_one(
        {"event": event, "channel": channel, "locale": locale}, {"_id": 0}
    )
    defaults = {p: _file(event, channel, locale, p) for p in PARTS}
    parts = {p: (override or {}).get(p) or defaults[p] for p in PARTS}
    return json_response(
        {
            "event": event,
            "channel": channel,
            "locale": locale,
            "overridden": override is not None,
            "parts": parts,
            "defaults": defaults,
        }
    )


def _parts(body: dict[str, Any]) -> dict[str, str]:
    raw = body.get("parts", body)
    errors: dict[str, str] = {}
    if not isinstance(raw, dict):
        raise InvalidInput("parts must be an object", code="invalid_fields", fields={"parts": "an object"})
    parts: dict[str, str] = {}
    env = SandboxedEnvironment()
    for name, source in raw.items():
        if name not in PARTS:
            if name not in ("event", "channel", "locale", "parts"):
                errors[name] = "unknown part"
            continue
        if source is None or source == "":
            continue
        if not isinstance(source, str) or len(source) > MAX_SOURCE:
            errors[name] = f"a string of at most {MAX_SOURCE} characters"
            continue
        try:
            env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            errors[name] = f"line {exc.lineno}: {exc.message}"
            continue
        parts[name] = source
    if errors:
        raise InvalidInput("the template has errors", code="invalid_fields", fields=errors)
    return parts


@routes.put("/api/v1/templates/{event}/{channel}/{locale}")
async def put_template(request: web.Request) -> web.Response:
    event, channel, locale = _key(request)
    parts = _parts(await read_json_object(request))
    if not parts.get("text"):
        raise InvalidInput("text is required", code="invalid_fields", fields={"text": "is required"})
    db = request.app[DATABASE].db
    key = {"event": event, "channel": channel, "locale": locale}
    before = await db.templates.find_one(key, {"_id": 0})
    doc = {
        **key,
        "subject": parts.get("subject"),
        "text": parts["text"],
        "html": parts.get("html"),
        "updated_at": datetime.now(UTC),
        "updated_by": admin_audit.maybe_principal_name(request),
    }
    await db.templates.replace_one(key, doc, upsert=True)
    await admin_audit.record(request, "template.update", f"{event}/{channel}/{locale}", before, doc)
    return json_response(doc)


@routes.delete("/api/v1/templates/{event}/{channel}/{locale}")
async def delete_template(request: web.Request) -> web.Response:
    event, channel, locale = _key(request)
    db = request.app[DATABASE].db
    key = {"event": event, "channel": channel, "locale": locale}
    before = await db.templates.find_one(key, {"_id": 0})
    if before is None:
        raise NotFound(f"template {event}/{channel}/{locale} is not overridden")
    await db.templates.delete_one(key)
    await admin_audit.record(request, "template.revert", f"{event}/{channel}/{locale}", before, None)
    return web.Response(status=204)


def sample_context(locale: str, public_url: str) -> dict[str, Any]:
    zh = locale == "zh-CN"
    now = datetime.now(UTC)
    ticket: dict[str, Any] = {
        "number": "T-000123",
        "subject": "打印机卡纸" if zh else "The printer jams",
        "status": "open",
        "priority": "normal",
        "channel": "webform",
        "created_at": now.isoformat(),
        "tags": [],
        "category": "printer",
    }
    event = SimpleNamespace(
        ticket_number="T-000123",
        old="new",
        new="solved",
        reopened=False,
        at=now,
        text="请更新固件后重试。" if zh else "Please update the firmware and try again.",
    )
    return {
        "ticket": ticket,
        "event": event,
        "public_url": public_url,
        "customer_name": "王小明" if zh else "Alex Doe",
        "status_label": _status_label("solved", locale),
        "agent_name": "Li" if zh else "Sam",
        "score": 5,
    }


@routes.post("/api/v1/templates/preview")
async def preview_template(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    locale = body.get("locale", "en")
    if locale not in LOCALES:
        raise InvalidInput("locale", code="invalid_fields", fields={"locale": f"one of {', '.join(LOCALES)}"})
    parts = _parts(body)
    context = sample_context(locale, request.app[SETTINGS].server.public_url)
    renderer = request.app[RENDERER]
    rendered: dict[str, str | None] = {p: None for p in PARTS}
    errors: dict[str, str] = {}
    for name, source in parts.items():
        try:
            rendered[name] = renderer.preview(source, name, context).strip()
        except jinja2.TemplateError as exc:  # undefined attributes, sandbox refusals
            errors[name] = str(exc)
    return json_response({"rendered": rendered, "errors": errors, "context": _plain_context(context)})


def _plain_context(context: dict[str, Any]) -> dict[str, Any]:
    out = dict(context)
    out["event"] = {
        k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(context["event"]).items()
    }
    return out
