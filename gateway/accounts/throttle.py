"""Login throttling per account and per client address, counted in MongoDB (`login_attempts`) so every
gateway process sees the same failures. Records expire by themselves (TTL index on `expires_at`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.database import Db


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ThrottleLimits:
    window: timedelta = timedelta(minutes=15)
    per_account: int = 5  # guessing one person's password
    per_address: int = 20  # spraying many accounts from one place


class LoginThrottle:
    def __init__(self, db: Db, limits: ThrottleLimits | None = None, clock: Callable[[], datetime] = _now):
        self._db = db
        self.limits = limits or ThrottleLimits()
        self._clock = clock

    def _keys(self, login: str, address: str) -> dict[str, int]:
        return {
            f"account:{login.strip().lower()}": self.limits.per_account,
            f"address:{address}": self.limits.per_address,
        }

    async def retry_after(self, login: str, address: str) -> int:
        """Seconds to wait before another attempt is allowed; 0 when one is allowed now."""
        now = self._clock()
        since = now - self.limits.window
        wait = 0.0
        for key, limit in self._keys(login, address).items():
            cursor = self._db.login_attempts.find({"key": key, "at": {"$gt": since}}, {"at": 1}).sort(
                "at", -1
            )
            stamps = [d["at"] async for d in cursor.limit(limit)]
            if len(stamps) >= limit:
                # Allowed again once the oldest of the last `limit` failures leaves the window.
                wait = max(wait, (stamps[-1] + self.limits.window - now).total_seconds())
        return max(0, int(wait + 0.999))

    async def failed(self, login: str, address: str) -> None:
        now = self._clock()
        await self._db.login_attempts.insert_many(
            [
                {"key": k, "at": now, "expires_at": now + self.limits.window}
                for k in self._keys(login, address)
            ]
        )

    async def succeeded(self, login: str) -> None:
        await self._db.login_attempts.delete_many({"key": f"account:{login.strip().lower()}"})
