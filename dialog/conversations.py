"""Per-conversation dialog state, kept in MongoDB (`conversations`), never only in memory."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase

State = Literal["idle", "suggesting", "confirming", "collecting"]
TRANSCRIPT_LIMIT = 60
HANDLED_LIMIT = 30


@dataclass
class RequiredField:
    name: str
    label: Mapping[str, str]
    pattern: str = ""
    skippable: bool = True

    def valid(self, value: str) -> bool:
        return not self.pattern or re.fullmatch(self.pattern, value.strip()) is not None


@dataclass
class DialogSettings:
    """Admin-tunable behaviour of the dialog (stored as `settings` document `dialog`)."""

    timeout_minutes: float = 30.0
    required_fields: dict[str, list[RequiredField]] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> DialogSettings:
        if not doc:
            return cls()
        required = {
            cat: [RequiredField(**f) for f in fields]
            for cat, fields in (doc.get("required_fields") or {}).items()
        }
        return cls(timeout_minutes=float(doc.get("timeout_minutes", 30.0)), required_fields=required)

    def to_doc(self) -> dict[str, Any]:
        return {
            "timeout_minutes": self.timeout_minutes,
            "required_fields": {c: [asdict(f) for f in fs] for c, fs in self.required_fields.items()},
        }


DEMO_DIALOG_SETTINGS = DialogSettings(
    required_fields={
        "printer": [RequiredField("model", {"zh-CN": "打印机型号", "en": "printer model"}, skippable=True)],
        "order": [
            RequiredField(
                "order_number",
                {"zh-CN": "订单号（6-20 位数字）", "en": "order number (6-20 digits)"},
                pattern=r"\d{6,20}",
                skippable=False,
            )
        ],
    }
)


class DialogSettingsHolder:
    """The dialog's admin settings (`settings` document `dialog`), re-read with the knowledge base."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self.current = DialogSettings()

    def __call__(self) -> DialogSettings:
        return self.current

    async def load(self) -> None:
        self.current = DialogSettings.from_doc(await self._db.settings.find_one({"_id": "dialog"}))


@dataclass
class Conversation:
    key: str
    channel: str
    account: str
    state: State = "idle"
    locale: str = "zh-CN"
    problem: str = ""
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    picked: str | None = None
    category: str | None = None
    priority: str | None = None
    tags: list[str] = field(default_factory=list)
    pending_fields: list[dict[str, Any]] = field(default_factory=list)
    collected: dict[str, str] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    handled: dict[str, dict[str, Any]] = field(default_factory=dict)  # record id -> result (retries)
    turns: int = 0
    identity: dict[str, Any] = field(default_factory=dict)  # the last writer, for timeouts
    reply_to: str = ""
    expires_at: datetime | None = None
    updated_at: datetime | None = None
    new: bool = True

    def note(self, who: str, text: str, now: datetime) -> None:
        self.transcript.append({"from": who, "text": text[:2000], "at": now})
        del self.transcript[:-TRANSCRIPT_LIMIT]

    def remember(self, record_id: str, result: dict[str, Any]) -> None:
        self.handled[record_id] = result
        for old in list(self.handled)[:-HANDLED_LIMIT]:
            del self.handled[old]

    def reset(self) -> None:
        self.state = "idle"
        self.problem = ""
        self.suggestions = []
        self.picked = None
        self.category = None
        self.priority = None
        self.tags = []
        self.pending_fields = []
        self.collected = {}
        self.expires_at = None


class ConversationStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db

    async def load(self, key: str, channel: str, account: str) -> Conversation:
        doc = await self._db.conversations.find_one({"key": key})
        if doc is None:
            return Conversation(key=key, channel=channel, account=account)
        data = {k: v for k, v in doc.items() if k in Conversation.__dataclass_fields__}
        for name in ("expires_at", "updated_at"):
            if isinstance(data.get(name), datetime) and data[name].tzinfo is None:
                data[name] = data[name].replace(tzinfo=UTC)
        conv = Conversation(**data)
        conv.new = False
        return conv

    async def save(self, conv: Conversation, now: datetime) -> None:
        conv.updated_at = now
        doc = asdict(conv)
        doc.pop("new")
        await self._db.conversations.replace_one({"key": conv.key}, doc, upsert=True)

    async def expired(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self._db.conversations.find(
            {"state": {"$in": ["suggesting", "confirming", "collecting"]}, "expires_at": {"$lt": now}},
            {
                "key": 1,
                "channel": 1,
                "account": 1,
                "expires_at": 1,
                "locale": 1,
                "identity": 1,
                "reply_to": 1,
            },
        ).limit(limit)
        return [doc async for doc in cursor]
