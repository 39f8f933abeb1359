"""The `audit` collection: who did what, when, to which target, with the value before and after."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.database import Db

# Never copy these into an audit record: a hash is still a secret worth guarding.
_SECRET_KEYS = frozenset({"password", "password_hash", "token_hash", "secret", "token"})


def redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: ("***" if k in _SECRET_KEYS else redact(v)) for k, v in value.items() if k != "_id"}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class AuditLog:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target: str = "",
        before: Any = None,
        after: Any = None,
        address: str | None = None,
        outcome: str = "ok",
        via: str = "",
    ) -> None:
        await self._db.audit.insert_one(
            {
                "at": datetime.now(UTC),
                "actor": actor,
                "action": action,
                "target": target,
                "before": redact(before),
                "after": redact(after),
                "address": address,
                "outcome": outcome,
                "via": via,
            }
        )

    async def search(
        self, *, actor: str | None = None, action: str | None = None, limit: int = 100, before_id: Any = None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if actor:
            query["actor"] = actor
        if action:
            query["action"] = {"$regex": f"^{re.escape(action)}"}
        if before_id is not None:
            query["_id"] = {"$lt": before_id}
        cursor = self._db.audit.find(query).sort("_id", -1).limit(limit)
        return [doc async for doc in cursor]
