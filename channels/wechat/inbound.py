"""A parsed callback (`WeChatPayload`) as the normalised `InboundMessage` (docs/architecture.md).

Messages become `text` or their media kind; a follow becomes the `welcome` action and configured menu
clicks become dialog actions; every other event, and any type WeChat adds later, is kept as kind
`event` with its raw fields, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from channels.wechat.xml_parse import WeChatPayload
from ticket_core.messages import AttachmentRef, CustomerIdentity, InboundMessage

#: Actions a menu key may map to (docs/architecture.md, message conventions).
MENU_ACTIONS = frozenset({"start_report", "check_status", "top_articles", "human", "welcome"})
#: Events after which WeChat allows 3 customer-service messages within a minute.
WINDOW_EVENTS = frozenset({"subscribe", "click", "scan"})

_MEDIA_FIELDS = {
    "image": ("media_id", "pic_url"),
    "voice": ("media_id", "format", "recognition"),
    "video": ("media_id", "thumb_media_id"),
    "location": ("latitude", "longitude", "scale", "label"),
    "link": ("title", "description", "url"),
    "file": ("title", "description", "file_key", "file_md5", "file_size"),
}


@dataclass(frozen=True)
class MenuMap:
    """CLICK key -> (action, value). "top_articles:printer" gives ("top_articles", "printer")."""

    entries: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> MenuMap:
        entries: dict[str, tuple[str, str]] = {}
        for key, target in config.items():
            if not isinstance(key, str) or not isinstance(target, str):
                raise ValueError(f"menu entry {key!r}: key and action must be strings")
            action, _, value = target.partition(":")
            if action not in MENU_ACTIONS:
                raise ValueError(f"menu entry {key!r}: unknown action {action!r}")
            entries[key] = (action, value)
        return cls(entries)

    def get(self, key: str | None) -> tuple[str, str] | None:
        return self.entries.get(key) if key else None


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _raw_fields(raw: Mapping[str, Any]) -> dict[str, str]:
    """Top-level fields as strings; nested structures as JSON so nothing is lost."""
    return {
        k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
        for k, v in raw.items()
        if v is not None
    }


def to_inbound(
    payload: WeChatPayload,
    *,
    account: str,
    menu: MenuMap,
    locale: str,
    received_at: float,
    attachments: tuple[AttachmentRef, ...] = (),
    nonce_key: str | None = None,
) -> InboundMessage:
    """`nonce_key`: an encrypted callback's nonce, kept on the record so a replay is recognised."""
    openid = payload.from_user
    kind, text = payload.kind, payload.text or ""
    fields: dict[str, str] = {"msg_type": payload.msg_type}
    if kind in _MEDIA_FIELDS:
        for name in _MEDIA_FIELDS[kind]:
            value = getattr(payload, name)
            if value is not None:
                fields[name] = _text_of(value)
        if payload.msg_type == "shortvideo":
            fields["short"] = "true"
    if kind == "voice":
        text = payload.recognition or ""  # the account's speech recognition, when enabled
    elif kind == "location":
        text = payload.label or ""
    elif kind == "link":
        text = "\n".join(p for p in (payload.title, payload.description, payload.url) if p)
    elif kind == "file":
        text = payload.title or ""
    elif kind == "event":
        kind, text, fields = _event(payload, menu)
    elif kind == "unknown":
        kind, fields = "event", {**_raw_fields(payload.raw), "msg_type": payload.msg_type}
    meta: dict[str, Any] = {
        "reply_to": openid,
        "official_account": payload.to_user,
        "create_time": payload.create_time,
    }
    if nonce_key is not None:
        meta["nonce_key"] = nonce_key

    return InboundMessage(
        channel="wechat",
        account=account,
        external_id=payload.msg_id or payload.dedup_key,
        dedup_key=f"wechat:{account}:{payload.dedup_key}",
        identity=CustomerIdentity("wechat", account, openid),
        conversation_key=f"wechat:{account}:{openid}",
        kind=kind,
        text=text,
        attachments=attachments,
        fields=fields,
        locale=locale,
        received_at=datetime.fromtimestamp(received_at, UTC),
        meta=meta,
    )


def _event(payload: WeChatPayload, menu: MenuMap) -> tuple[str, str, dict[str, str]]:
    event = payload.event or ""
    fields = {"event": event, "msg_type": "event"}
    if payload.event_key:
        fields["event_key"] = payload.event_key
    if payload.qr_scene is not None:
        fields["qr_scene"] = payload.qr_scene
    if payload.ticket:
        fields["qr_ticket"] = payload.ticket
    if event == "subscribe":
        return "action", "", {**fields, "action": "welcome"}
    if event == "click":
        mapped = menu.get(payload.event_key)
        if mapped is not None:
            action, value = mapped
            extra = {"value": value} if value else {}
            return "action", "", {**fields, "action": action, **extra}
    if event == "location":
        for name in ("latitude", "longitude", "precision"):
            value = getattr(payload, name)
            if value is not None:
                fields[name] = _text_of(value)
    elif event == "templatesendjobfinish":
        fields["template_msg_id"] = payload.msg_id or ""
        fields["status"] = payload.template_status or ""
    # Everything else the dialog only records; keep every raw field so nothing is lost.
    return "event", "", {**_raw_fields(payload.raw), **fields}
