"""Renders notification templates: a record in `templates` overrides the packaged default.

Lookup for (event, channel, locale, part): database record, then `templates/<channel>/`, then
`templates/default/`, each first in the locale asked for and then in English.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

import templates as template_package
from gateway.database import Db

TEMPLATE_ROOT = Path(template_package.__file__).parent
LOCALES = ("zh-CN", "en")
PARTS = ("subject", "text", "html")


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str | None = None
    html: str | None = None


def normalise_locale(locale: str | None) -> str:
    if locale and locale.lower().startswith("zh"):
        return "zh-CN"
    return "en"


class TemplateRenderer:
    def __init__(self, db: Db | None = None) -> None:
        self._db = db
        # Sandboxed: admins edit templates, and a template must not reach into Python.
        self._text_env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(TEMPLATE_ROOT)), autoescape=False, keep_trailing_newline=False
        )
        self._html_env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(TEMPLATE_ROOT)), autoescape=True
        )

    def _env(self, part: str) -> SandboxedEnvironment:
        return self._html_env if part == "html" else self._text_env

    async def _override(self, event: str, channel: str, locale: str) -> dict[str, Any] | None:
        if self._db is None:
            return None
        return await self._db.templates.find_one({"event": event, "channel": channel, "locale": locale})

    def _file_source(self, event: str, channel: str, locale: str, part: str) -> str | None:
        for folder in (channel, "default"):
            for loc in dict.fromkeys((locale, "en")):
                name = f"{folder}/{event}.{loc}.{part}.j2"
                if (TEMPLATE_ROOT / name).is_file():
                    return name
        return None

    async def render(self, event: str, channel: str, locale: str | None, context: dict[str, Any]) -> Rendered:
        locale = normalise_locale(locale)
        override = await self._override(event, channel, locale)
        out: dict[str, str | None] = {}
        for part in PARTS:
            env = self._env(part)
            source = override.get(part) if override else None
            if source:
                out[part] = env.from_string(source).render(context).strip()
                continue
            name = self._file_source(event, channel, locale, part)
            out[part] = env.get_template(name).render(context).strip() if name else None
        if not out["text"]:
            raise LookupError(f"no template for event {event!r} on channel {channel!r}")
        return Rendered(text=out["text"] or "", subject=out["subject"], html=out["html"])

    def preview(self, source: str, part: str, context: dict[str, Any]) -> str:
        """Render an unsaved template (the console's live preview); syntax errors raise TemplateError."""
        return self._env(part).from_string(source).render(context)
