"""Reads a form submission from JSON, form-encoded or multipart bodies, within size caps.

Everything that is not acceptable becomes an `InvalidInput` with a code the HTTP layer maps to a 4xx.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

import filetype
from aiohttp import BodyPartReader, web

from ticket_core.errors import InvalidInput

MAX_FIELDS_BYTES = 256 * 1024
ALLOWED_TYPES = (
    "image/",
    "application/pdf",
    "text/plain",
    "video/mp4",
    "application/zip",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.ms-excel",
)


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Submission:
    values: dict[str, str] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)


def safe_filename(name: str) -> str:
    """No path parts, no control characters, bounded length: the name is shown, never used as a path."""
    name = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"^\.+", "", name).strip()
    return name[:200] or "attachment"


def sniff_type(data: bytes, declared: str) -> str:
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return str(kind.mime)
    if declared.startswith("text/plain") or declared in ("", "application/octet-stream"):
        try:
            data[:65536].decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError:
            pass
    return "application/octet-stream"


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the body is not valid UTF-8 (byte {exc.start})", code="invalid_encoding"
        ) from exc


async def _read_capped(request: web.Request, cap: int) -> bytes:
    if request.content_length is not None and request.content_length > cap:
        raise InvalidInput(f"the body is larger than {cap} bytes", code="body_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > cap:
            raise InvalidInput(f"the body is larger than {cap} bytes", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _scalar(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | float | str):
        return str(value)
    raise InvalidInput(
        f"field {name!r} must be a string", code="invalid_fields", fields={name: "must be a string"}
    )


async def read_submission(
    request: web.Request, *, max_file_bytes: int, max_files: int, max_body_bytes: int
) -> Submission:
    ctype = request.content_type
    if ctype == "application/json":
        text = _decode(await _read_capped(request, MAX_FIELDS_BYTES))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                code="invalid_json",
            ) from exc
        if not isinstance(data, dict):
            raise InvalidInput("the JSON body must be an object", code="invalid_json")
        return Submission(values={str(k): _scalar(str(k), v) for k, v in data.items()})
    if ctype == "application/x-www-form-urlencoded":
        text = _decode(await _read_capped(request, MAX_FIELDS_BYTES))
        try:
            pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise InvalidInput("a field is not valid UTF-8", code="invalid_encoding") from exc
        return Submission(values=dict(pairs))
    if ctype == "multipart/form-data":
        return await _read_multipart(request, max_file_bytes, max_files, max_body_bytes)
    raise InvalidInput(
        f"unsupported content type {ctype!r}; send JSON, form-encoded or multipart data",
        code="unsupported_media_type",
    )


async def _read_multipart(
    request: web.Request, max_file_bytes: int, max_files: int, max_body_bytes: int
) -> Submission:
    if request.content_length is not None and request.content_length > max_body_bytes:
        raise InvalidInput(f"the body is larger than {max_body_bytes} bytes", code="body_too_large")
    sub = Submission()
    field_bytes = 0
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise InvalidInput("nested multipart bodies are not accepted", code="invalid_multipart")
            name = part.name or ""
            if part.filename is not None:
                data = await _read_part(part, max_file_bytes, name)
                if not data and not part.filename:
                    continue  # an empty file input
                if len(sub.uploads) >= max_files:
                    raise InvalidInput(
                        f"at most {max_files} files",
                        code="too_many_files",
                        fields={name: f"at most {max_files} files"},
                    )
                declared = part.headers.get("Content-Type", "application/octet-stream")
                content_type = sniff_type(data, declared)
                if not content_type.startswith(ALLOWED_TYPES):
                    raise InvalidInput(
                        f"file {safe_filename(part.filename)!r} is of a type we do not accept",
                        code="unsupported_attachment",
                        fields={name: "file type not accepted"},
                    )
                sub.uploads.append(Upload(safe_filename(part.filename), content_type, data))
                continue
            raw = await _read_part(part, MAX_FIELDS_BYTES - field_bytes, name)
            field_bytes += len(raw)
            sub.values[name] = _decode(raw)
    except ValueError as exc:  # aiohttp's multipart parser reports malformed bodies as ValueError
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"malformed multipart body: {exc}", code="invalid_multipart") from exc
    return sub


async def _read_part(part: BodyPartReader, cap: int, name: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await part.read_chunk(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > cap:
            raise InvalidInput(
                f"{name!r} is larger than {cap} bytes",
                code="attachment_too_large",
                fields={
                    name: f"larger than {cap // (1024 * 1024) or cap} {'MB' if cap >= 1048576 else 'bytes'}"
                },
            )
        chunks.append(chunk)
    return b"".join(chunks)
