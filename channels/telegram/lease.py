"""A leader lease in MongoDB (`leases`): exactly one gateway process holds it until it lapses.

Taking it is one guarded upsert: the filter matches only a free (expired) or our own lease, so when
another owner holds a live one the upsert collides with the existing `_id` and fails. `update_one` by
`_id`, never `find_one_and_update`, which is slow on the embedded database.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError

from ticket_core.errors import StorageUnavailable
from ticket_core.repository import Db


def _now() -> datetime:
    return datetime.now(UTC)


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLease:
    def __init__(
        self,
        db: Db,
        name: str,
        *,
        seconds: float,
        owner: str | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._db = db
        self.name = name
        self.seconds = seconds
        self.owner = owner or process_owner()
        self._clock = clock

    async def acquire(self) -> bool:
        """Take or renew the lease; True while we hold it. Raises StorageUnavailable."""
        now = self._clock()
        guard: dict[str, Any] = {
            "_id": self.name,
            "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}],
        }
        update = {
            "$set": {
                "owner": self.owner,
                "expires_at": now + timedelta(seconds=self.seconds),
                "renewed_at": now,
            }
        }
        try:
            result = await self._db.leases.update_one(guard, update, upsert=True)
        except DuplicateKeyError:
            return False  # someone else holds a live lease
        except PyMongoError as exc:
            raise StorageUnavailable(f"lease {self.name}: {exc}") from exc
        return result.matched_count == 1 or result.upserted_id is not None

    async def release(self) -> None:
        """Give the lease up at once so another process need not wait for it to lapse."""
        try:
            await self._db.leases.delete_one({"_id": self.name, "owner": self.owner})
        except PyMongoError:
            pass  # it lapses by itself

    async def holder(self) -> str | None:
        doc = await self._db.leases.find_one({"_id": self.name})
        if doc is None or _aware(doc["expires_at"]) < self._clock():
            return None
        return str(doc["owner"])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
