"""Callback XML to a typed `WeChatPayload`, refusing anything that is not a plain WeChat body.

Bodies come from the internet before any business logic runs, so parsing is defensive: a size cap,
strict UTF-8, no DTD at all (which rules out entity tricks before expat sees them; xmltodict
>= 1.0.1 refuses entity declarations too), and a nesting limit. Every failure is an `XmlRejected`
(an InvalidInput) with a reason in `.fields["reason"]`; nothing else escapes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from channels.wechat.errors import XmlRejected

DEFAULT_MAX_BYTES = 64 * 1024
#: Real bodies nest at most 5 levels (xml > CopyrightCheckResult > ResultList > item > field).
DEFAULT_MAX_DEPTH = 12

_KINDS = {
    "text": "text",
    "image": "image",
    "voice": "voice",
    "video": "video",
    "shortvideo": "video",
    "location": "location",
    "link": "link",
    "file": "file",
    "event": "event",
}


def _reject(reason: str, message: str) -> XmlRejected:
    return XmlRejected(message, fields={"reason": reason})


def parse_xml_fields(
    body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> dict[str, Any]:
    """The children of the `<xml>` root as a dict (xmltodict shapes: str, None, dict or list)."""
    if len(body) > max_bytes:
        raise _reject("too_large", f"body exceeds {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _reject("encoding", "body is not UTF-8") from None
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise _reject("dtd", "DTDs and entity declarations are not accepted")

    def limit_depth(path: list[Any], key: str, value: Any) -> tuple[str, Any]:
        # Called as each element closes; the deepest one closes first, so this trips early.
        if len(path) > max_depth:
            raise _reject("too_deep", f"nesting deeper than {max_depth}")
        return key, value

    try:
        # Encoding is forced: expat would otherwise honour an `encoding=` declaration in the body.
        doc = xmltodict.parse(body, encoding="utf-8", disable_entities=True, postprocessor=limit_depth)
    except XmlRejected:
        raise
    except ValueError as exc:  # xmltodict's refusal of entity declarations
        raise _reject("entities", f"refused: {exc}") from None
    except ExpatError as exc:
        raise _reject("malformed", f"malformed XML: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"xml"}:
        raise _reject("root", "root element must be <xml>")
    root = doc["xml"]
    if root is None:
        return {}
    if not isinstance(root, dict):
        raise _reject("root", "<xml> has no child elements")
    return root


@dataclass(frozen=True)
class WeChatPayload:
    """One callback message or event. Text fields are None when absent; `raw` keeps everything,
    so types we do not model (kind "unknown") lose nothing."""

    to_user: str  # the official account's original id (gh_...)
    from_user: str  # the sender's openid
    create_time: int
    msg_type: str  # as sent, lower-cased: text, image, ..., event, or anything new
    kind: str  # text, image, voice, video, location, link, file, event, unknown
    dedup_key: str
    event: str | None = None  # lower-cased: subscribe, unsubscribe, scan, click, view, location, ...
    event_key: str | None = None
    qr_scene: str | None = None  # subscribe via "qrscene_<x>" or SCAN: the scene value
    ticket: str | None = None  # QR code ticket
    msg_id: str | None = None  # MsgId, or MsgID of job-finish events (the template message's id)
    text: str | None = None  # Content
    media_id: str | None = None
    pic_url: str | None = None
    format: str | None = None  # voice codec (amr, speex)
    recognition: str | None = None  # voice-to-text, when the account enabled it
    thumb_media_id: str | None = None
    latitude: float | None = None  # Location_X / Latitude
    longitude: float | None = None  # Location_Y / Longitude
    scale: float | None = None  # map zoom (location message)
    precision: float | None = None  # accuracy (LOCATION event)
    label: str | None = None
    url: str | None = None
    title: str | None = None
    description: str | None = None
    file_key: str | None = None
    file_md5: str | None = None
    file_size: int | None = None
    template_status: str | None = None  # TEMPLATESENDJOBFINISH: success, failed:user block, ...
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False)


def parse_callback_xml(
    body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> WeChatPayload:
    """Parse a clear (plaintext or already decrypted) callback body."""
    return payload_from_fields(parse_xml_fields(body, max_bytes=max_bytes, max_depth=max_depth))


def payload_from_fields(raw: Mapping[str, Any]) -> WeChatPayload:
    f = _Fields(raw)
    to_user, from_user = f.required("ToUserName"), f.required("FromUserName")
    create_time = f.required_integer("CreateTime")
    msg_type = f.required("MsgType").lower()
    kind = _KINDS.get(msg_type, "unknown")
    event = f.text("Event")
    event = event.lower() if event else None
    msg_id = f.text("MsgId") or f.text("MsgID")
    event_key = f.text("EventKey")

    if msg_type == "event":
        # Events have no MsgId; WeChat's retries repeat FromUserName+CreateTime. Job-finish events
        # carry the sent message's MsgID, which separates two results in the same second.
        dedup_key = f"{from_user}:{create_time}:{event or ''}"
        if msg_id:
            dedup_key += f":{msg_id}"
    elif msg_id:
        dedup_key = msg_id
    else:
        dedup_key = f"{from_user}:{create_time}:{msg_type}"

    qr_scene = None
    if event == "subscribe" and event_key and event_key.startswith("qrscene_"):
        qr_scene = event_key.removeprefix("qrscene_")
    elif event == "scan" and event_key:
        qr_scene = event_key

    is_location_event = event == "location"
    return WeChatPayload(
        to_user=to_user,
        from_user=from_user,
        create_time=create_time,
        msg_type=msg_type,
        kind=kind,
        dedup_key=dedup_key,
        event=event,
        event_key=event_key,
        qr_scene=qr_scene,
        ticket=f.text("Ticket"),
        msg_id=msg_id,
        text=f.text("Content"),
        media_id=f.text("MediaId"),
        pic_url=f.text("PicUrl"),
        format=f.text("Format"),
        recognition=f.text("Recognition"),
        thumb_media_id=f.text("ThumbMediaId"),
        latitude=f.number("Latitude" if is_location_event else "Location_X"),
        longitude=f.number("Longitude" if is_location_event else "Location_Y"),
        scale=f.number("Scale"),
        precision=f.number("Precision"),
        label=f.text("Label"),
        url=f.text("Url"),
        title=f.text("Title"),
        description=f.text("Description"),
        file_key=f.text("FileKey"),
        file_md5=f.text("FileMd5"),
        file_size=f.integer("FileTotalLen"),
        template_status=f.text("Status") if event == "templatesendjobfinish" else None,
        raw=raw,
    )


class _Fields:
    """Typed access to top-level fields; a field of the wrong shape is refused, not guessed."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    def text(self, name: str) -> str | None:
        value = self._raw.get(name)
        if value is None or isinstance(value, str):
            return value
        raise _reject("field", f"<{name}> must be a single text element")

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise _reject("missing", f"<{name}> is required")
        return value

    def required_integer(self, name: str) -> int:
        value = self.integer(name)
        if value is None:
            raise _reject("missing", f"<{name}> is required")
        return value

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise _reject("field", f"<{name}> must be an integer") from None

    def number(self, name: str) -> float | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise _reject("field", f"<{name}> must be a number") from None
        if not math.isfinite(number):
            raise _reject("field", f"<{name}> must be a finite number")
        return number
