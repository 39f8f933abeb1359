"""Rendering console pages: Jinja2 with autoescape, the person's language, and friendly HTML errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from gateway.api.auth import maybe_principal
from gateway.console.i18n import pick_locale, translator
from gateway.tokens import Principal

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
)
SECURITY_HEADERS = {
    # Scripts and styles only from our own origin; no inline scripts, so an injected tag cannot run.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
ADMIN_PAGES = ("kb", "matching", "rules", "routing", "templates", "channels", "agents", "audit")


def locale_of(request: web.Request, who: Principal | None = None) -> str:
    who = who or maybe_principal(request)
    return pick_locale(who.locale if who else None, request.headers.get("Accept-Language", ""))


def page(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> web.Response:
    who = maybe_principal(request)
    locale = locale_of(request, who)
    html = _ENV.get_template(template).render(
        t=translator(locale),
        locale=locale,
        who=who,
        admin_pages=ADMIN_PAGES,
        csrf=who.csrf if who else "",
        **context,
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def error_page(request: web.Request, status: int, key: str, **context: Any) -> web.Response:
    return page(request, "error.html", status=status, message_key=key, **context)
