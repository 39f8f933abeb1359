"""A small in-memory token bucket per client address, for the public knowledge endpoints.

It lives in one process on purpose: it only has to stop a script from hammering the matcher (which
holds the GIL) through one gateway, and a shared counter in MongoDB would cost a write per keystroke.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.http_errors import error_response


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBucketLimiter:
    """`rate` tokens per second refill a bucket of `burst`; each request takes one."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._forget_idle(now)
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        # A bucket that has refilled completely carries no information: dropping it bounds memory
        # without letting anyone through sooner. If every client is active, the oldest half goes.
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_clients:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].stamp)
            for key in oldest[: len(oldest) // 2]:
                del self._buckets[key]

    def check(self, request: web.Request) -> web.Response | None:
        """A 429 answer with Retry-After when `request`'s client is over its budget, else None."""
        # The peer address, not X-Forwarded-For: a header anyone can set must not pick the bucket.
        wait = self.take(request.remote or "unknown")
        if wait <= 0:
            return None
        return error_response(
            429,
            "rate_limited",
            "too many requests from this address; slow down",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
