"""Console sessions in MongoDB (`sessions`), so any gateway process can serve any request.

The cookie carries a random id; only its hash is stored. Each session has its own CSRF token, sent back
by the console in the `X-CSRF-Token` header (fetch) or a `csrf_token` form field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.database import Db

COOKIE = "og_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
# Sliding expiry is written at most this often, so reading pages does not mean writing the database.
TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class Session:
    key: str  # the stored hash, never the cookie value
    agent: str
    csrf: str
    created_at: datetime
    expires_at: datetime


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class SessionStore:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def create(self, agent: str, *, address: str | None = None) -> tuple[str, Session]:
        """A new session; returns the cookie value (shown only here) and the session."""
        value = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        session = Session(_hash(value), agent, secrets.token_urlsafe(24), now, now + IDLE)
        await self._db.sessions.insert_one(
            {
                "_id": session.key,
                "agent": agent,
                "csrf": session.csrf,
                "created_at": now,
                "touched_at": now,
                "expires_at": session.expires_at,
                "address": address,
            }
        )
        return value, session

    async def get(self, value: str) -> Session | None:
        if not value or len(value) > 100:
            return None
        doc = await self._db.sessions.find_one({"_id": _hash(value)})
        if doc is None:
            return None
        now = datetime.now(UTC)
        # The TTL monitor removes expired records only about once a minute: check here too.
        if doc["expires_at"] <= now or doc["created_at"] + ABSOLUTE <= now:
            return None
        if now - doc.get("touched_at", now) >= TOUCH_EVERY:
            await self._db.sessions.update_one(
                {"_id": doc["_id"]}, {"$set": {"touched_at": now, "expires_at": now + IDLE}}
            )
        return Session(doc["_id"], doc["agent"], doc["csrf"], doc["created_at"], doc["expires_at"])

    async def delete(self, value: str) -> None:
        await self._db.sessions.delete_one({"_id": _hash(value)})

    async def delete_for(self, agent: str) -> int:
        """End every session of an account (disabled, deleted, password changed)."""
        result = await self._db.sessions.delete_many({"agent": agent})
        return result.deleted_count
