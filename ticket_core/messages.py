"""The normalised message model: the only place inbound and outbound message types are defined.

Every channel adapter turns platform input into an `InboundMessage` and every notification becomes an
`OutboundMessage`; the bus, dialog and outbox know nothing else about platforms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CustomerIdentity:
    """Who wrote, as the channel knows them. One customer may hold many identities."""

    channel: str
    account: str
    external_id: str  # openid, Telegram user id, email address, form submitter key
    display_name: str | None = None
    email: str | None = None
    phone: str | None = None

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.account}:{self.external_id}"


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment already stored (GridFS); messages carry only its metadata."""

    file_id: str
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class InboundMessage:
    channel: str  # "webform", "wechat", "telegram", "email", "fake"
    account: str  # configured account/bot/mailbox/form name
    external_id: str  # platform message id
    dedup_key: str  # unique per real-world message; retries share it
    identity: CustomerIdentity
    conversation_key: str  # messages with one key are handled in order
    kind: str = "text"  # text, form, image, voice, video, location, link, file, event, edit, callback, ...
    text: str = ""
    subject: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)  # form fields, event keys, ...
    locale: str | None = None  # "zh-CN" or "en" when known
    received_at: datetime = field(default_factory=utcnow)
    raw_ref: str | None = None  # where the untouched payload is kept (GridFS id), when stored apart
    meta: Mapping[str, Any] = field(default_factory=dict)  # channel-specific extras (thread refs, ...)

    def to_doc(self) -> dict[str, Any]:
        # Field by field rather than dataclasses.asdict, which deep-copies every value: on the intake
        # path that copy cost about a quarter of the gateway's CPU per message. The result is the same.
        doc = {name: getattr(self, name) for name in _INBOUND_FIELDS}
        doc["identity"] = {name: getattr(self.identity, name) for name in _IDENTITY_FIELDS}
        doc["attachments"] = [
            {name: getattr(a, name) for name in _ATTACHMENT_FIELDS} for a in self.attachments
        ]
        doc["fields"] = dict(self.fields)
        doc["meta"] = dict(self.meta)
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> InboundMessage:
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in doc.items() if k in names}
        data["identity"] = CustomerIdentity(**doc["identity"])
        data["attachments"] = tuple(AttachmentRef(**a) for a in doc.get("attachments", ()))
        received = data.get("received_at")
        if isinstance(received, datetime) and received.tzinfo is None:
            data["received_at"] = received.replace(tzinfo=UTC)
        return cls(**data)


_IDENTITY_FIELDS = tuple(f.name for f in dataclasses.fields(CustomerIdentity))
_ATTACHMENT_FIELDS = tuple(f.name for f in dataclasses.fields(AttachmentRef))
_INBOUND_FIELDS = tuple(f.name for f in dataclasses.fields(InboundMessage))


@dataclass(frozen=True)
class OutboundMessage:
    channel: str
    account: str
    recipient: str  # channel address: openid, chat id, email address
    text: str
    subject: str | None = None
    html: str | None = None
    kind: str = "text"  # text, template, article_list, ...
    locale: str = "en"
    template: Mapping[str, Any] = field(
        default_factory=dict
    )  # platform template id and data, when kind=template
    buttons: tuple[tuple[str, str], ...] = ()  # (label, callback value) for channels with buttons
    ticket_number: str | None = None
    automatic: bool = True  # machine-written (confirmations, notices) rather than an agent's reply
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["template"] = dict(self.template)
        doc["meta"] = dict(self.meta)
        doc["buttons"] = [list(b) for b in self.buttons]
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> OutboundMessage:
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in doc.items() if k in names}
        data["buttons"] = tuple(tuple(b) for b in doc.get("buttons", ()))
        return cls(**data)
