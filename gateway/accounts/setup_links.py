"""One-time links (`/admin/setup/<token>`) that let a person set their password: the first admin on first
start, and agents an admin invites. Only a hash is stored; using the link deletes it (a guarded delete,
so two tabs cannot both use it)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.database import Db

FIRST_ADMIN = "first_admin"
INVITE = "invite"
LIFETIME = timedelta(days=2)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SetupLinks:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def create(self, purpose: str, *, agent: str | None = None, lifetime: timedelta = LIFETIME) -> str:
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        if purpose == FIRST_ADMIN:
            # One first-admin link at a time: a restart replaces the one printed before.
            await self._db.setup_links.delete_many({"purpose": FIRST_ADMIN})
        await self._db.setup_links.insert_one(
            {
                "_id": _hash(token),
                "purpose": purpose,
                "agent": agent,
                "created_at": now,
                "expires_at": now + lifetime,
            }
        )
        return token

    async def peek(self, token: str) -> dict[str, Any] | None:
        if not token or len(token) > 100:
            return None
        doc = await self._db.setup_links.find_one({"_id": _hash(token)})
        if doc is None or doc["expires_at"] <= datetime.now(UTC):
            return None
        return doc

    async def consume(self, token: str) -> bool:
        result = await self._db.setup_links.delete_one(
            {"_id": _hash(token), "expires_at": {"$gt": datetime.now(UTC)}}
        )
        return result.deleted_count == 1
