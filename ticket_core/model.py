"""Tickets and customers as the rest of the code sees them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
Priority = Literal["urgent", "high", "normal", "low"]
STATUSES: tuple[str, ...] = get_args(Status)
PRIORITIES: tuple[str, ...] = get_args(Priority)
OPEN_STATUSES: tuple[str, ...] = ("new", "open", "pending", "on_hold")


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class Actor:
    kind: Literal["customer", "agent", "system"]
    id: str = ""
    name: str = ""

    @classmethod
    def system(cls, name: str = "omnigate") -> Actor:
        return cls("system", name, name)


@dataclass(frozen=True)
class Ticket:
    id: str
    number: str
    subject: str
    status: str
    priority: str
    channel: str
    account: str
    requester: str  # customer id
    created_at: datetime
    updated_at: datetime
    category: str | None = None
    tags: tuple[str, ...] = ()
    assignee: str | None = None
    description: str = ""
    locale: str = "en"
    conversation_key: str = ""
    reply_to: str = ""  # the channel address notifications go to (openid, chat id, email)
    source_key: str | None = None  # the inbox dedup key that created it: makes creation idempotent
    fields: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Mapping[str, Any], ...] = ()
    sla: Mapping[str, Any] = field(default_factory=dict)
    solved_at: datetime | None = None
    closed_at: datetime | None = None
    team: str | None = None  # set by assignment rules (ticket_core.assignment)
    csat: Mapping[str, Any] | None = None  # {score, comment, at}: the latest rating

    def to_doc(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc.pop("id")
        doc["tags"] = list(self.tags)
        doc["fields"] = dict(self.fields)
        doc["attachments"] = [dict(a) for a in self.attachments]
        doc["sla"] = dict(self.sla)
        if self.source_key is None:
            doc.pop("source_key")  # sparse unique index: absent, not null
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Ticket:
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: _aware(v) for k, v in doc.items() if k in names}
        data["id"] = str(doc["_id"])
        data["tags"] = tuple(doc.get("tags", ()))
        data["attachments"] = tuple(doc.get("attachments", ()))
        return cls(**data)

    def public_view(self) -> dict[str, Any]:
        out = self.to_doc()
        out["id"] = self.id
        out.pop("source_key", None)
        return out


@dataclass(frozen=True)
class Customer:
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    tags: tuple[str, ...] = ()
    identities: tuple[Mapping[str, Any], ...] = ()
    tier: str | None = None  # a service level (e.g. "vip") that routing rules and SLA policies may match

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Customer:
        return cls(
            id=str(doc["_id"]),
            name=doc.get("name"),
            email=doc.get("email"),
            phone=doc.get("phone"),
            locale=doc.get("locale"),
            tags=tuple(doc.get("tags", ())),
            identities=tuple(doc.get("identities", ())),
            tier=doc.get("tier"),
        )
