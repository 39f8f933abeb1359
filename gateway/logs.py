"""Structured logs: one JSON object per line, with the request and message ids of the work in hand,
and secrets (tokens, passwords, keys) redacted wherever they appear in a message."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
message_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("message_id", default=None)

_REDACT = [
    (re.compile(r"og_[A-Za-z0-9_\-]{20,}"), "og_***"),  # our API tokens
    (re.compile(r"(?<![0-9])\d{6,12}:[A-Za-z0-9_\-]{30,}"), "***:***"),  # Telegram bot tokens (in URLs too)
    (
        re.compile(
            r"(?i)(access_token|secret|password|passwd|token|appsecret|encoding_aes_key)([\"']?\s*[=:]\s*[\"']?)"
            r"[^\s\"'&,;]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"), r"\1***"),
    (re.compile(r"mongodb(\+srv)?://[^:/@\s]+:[^@\s]+@"), r"mongodb\1://***:***@"),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACT:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if (rid := request_id.get()) is not None:
            entry["request_id"] = rid
        if (mid := message_id.get()) is not None:
            entry["message_id"] = mid
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    """`fmt`: json, text, or auto (JSON unless writing to a terminal)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if use_json else RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request gets an id (the caller's X-Request-Id when it is sane), logged and echoed back."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if re.fullmatch(r"[A-Za-z0-9._\-]{1,64}", given) else uuid.uuid4().hex[:16]
    token = request_id.set(rid)
    try:
        response = await handler(request)
        response.headers["X-Request-Id"] = rid
        return response
    finally:
        request_id.reset(token)
