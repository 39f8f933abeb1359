"""One place where errors become HTTP answers: `{"error": {"code", "message"}}`, never a bare 500 page."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from ticket_core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OmnigateError,
    StorageUnavailable,
)

log = logging.getLogger(__name__)

INPUT_STATUS = {
    "invalid_fields": 422,
    "attachment_too_large": 413,
    "body_too_large": 413,
    "too_many_files": 413,
    "unsupported_media_type": 415,
    "unsupported_attachment": 415,
    "unauthorized": 401,
    "forbidden": 403,
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return web.json_response({"error": error}, status=status, headers=headers)


def to_response(exc: BaseException) -> web.Response:
    if isinstance(exc, InvalidInput):
        return error_response(INPUT_STATUS.get(exc.code, 400), exc.code, str(exc), fields=exc.fields)
    if isinstance(exc, NotFound):
        return error_response(404, exc.code, str(exc))
    if isinstance(exc, Conflict):
        return error_response(409, exc.code, str(exc))
    if isinstance(exc, StorageUnavailable | ConnectionFailure | ServerSelectionTimeoutError):
        # 503 makes webhook platforms retry instead of believing we stored what we could not.
        return error_response(
            503, "storage_unavailable", "storage is unavailable; retry shortly", headers={"Retry-After": "5"}
        )
    if isinstance(exc, OmnigateError):
        return error_response(400, exc.code, str(exc))
    if isinstance(exc, web.HTTPException):
        code = exc.reason.lower().replace(" ", "_") if exc.reason else "http_error"
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 413:
            code, message = "body_too_large", "the request body is too large"
        return error_response(exc.status, code, message or code, headers=_keep_headers(exc))
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "an internal error occurred; it has been logged")


def _keep_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate", "Retry-After")}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return to_response(exc)
    except Exception as exc:
        return to_response(exc)
