"""Who may act in the staff group: Telegram users mapped to agent accounts in `agents`.

An agent document is `{name, role, telegram_user_id, username, email}` (`omnigate user add`). Viewers
may read the group but not act: only `admin` and `agent` roles answer customers or change tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ticket_core.model import Actor
from ticket_core.repository import Db

ACTING_ROLES = frozenset({"admin", "agent"})


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    role: str
    telegram_user_id: int | None = None
    username: str | None = None

    @property
    def can_act(self) -> bool:
        return self.role in ACTING_ROLES

    @property
    def actor(self) -> Actor:
        return Actor("agent", self.id, self.name)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Agent:
        tid = doc.get("telegram_user_id")
        return cls(
            id=str(doc["_id"]),
            name=str(doc.get("name") or ""),
            role=str(doc.get("role") or "viewer"),
            telegram_user_id=int(tid)
            if isinstance(tid, int | str) and str(tid).lstrip("-").isdigit()
            else None,
            username=doc.get("username"),
        )


class AgentDirectory:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def by_telegram_id(self, user_id: int) -> Agent | None:
        # Accept the id stored as a number or as text (hand-edited documents).
        doc = await self._db.agents.find_one({"telegram_user_id": {"$in": [user_id, str(user_id)]}})
        return Agent.from_doc(doc) if doc else None

    async def by_handle(self, handle: str) -> Agent | None:
        """`@username` or the agent's name (case-sensitive name, case-insensitive username)."""
        handle = handle.strip()
        if not handle:
            return None
        bare = handle.lstrip("@")
        for query in ({"username": bare}, {"username": bare.lower()}, {"name": bare}):
            doc = await self._db.agents.find_one(query)
            if doc is not None:
                return Agent.from_doc(doc)
        return None
