"""The per-address token bucket of the public knowledge endpoints, on a virtual clock."""

from __future__ import annotations

import pytest

from gateway.api.ratelimit import TokenBucketLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one token takes 1/rate seconds
    assert limiter.take("b") == 0.0  # buckets are per client
    clock.now += 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    clock.now += 100
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refills only up to the burst


def test_memory_stays_bounded_without_letting_anyone_through_sooner() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate=1.0, burst=1, max_clients=4, clock=clock)
    assert limiter.take("busy") == 0.0
    for i in range(50):
        clock.now += 0.01
        limiter.take(f"client-{i}")
    assert len(limiter._buckets) <= 4
    with pytest.raises(ValueError):
        TokenBucketLimiter(rate=0, burst=1)
