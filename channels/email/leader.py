"""A leader lease in MongoDB (`leases`): exactly one instance polls a mailbox at a time.

Taking it is one guarded upsert: it matches when the lease is ours or has expired; when another
instance holds it, the upsert collides on `_id` and we know we lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError


def _now() -> datetime:
    return datetime.now(UTC)


class LeaderLease:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        key: str,
        owner: str,
        seconds: float,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._db = db
        self.key = key
        self.owner = owner
        self.seconds = seconds
        self._clock = clock

    async def acquire(self) -> bool:
        """Take or renew the lease; False when another live instance holds it."""
        now = self._clock()
        try:
            await self._db.leases.update_one(
                {"_id": self.key, "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "expires_at": now + timedelta(seconds=self.seconds)}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def release(self) -> None:
        """Let another instance take over at once instead of waiting for expiry."""
        with contextlib.suppress(PyMongoError):
            await self._db.leases.update_one(
                {"_id": self.key, "owner": self.owner}, {"$set": {"expires_at": self._clock()}}
            )
