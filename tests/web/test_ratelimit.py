"""Fixed windows over the lazily expiring storage, with an injected clock."""

from __future__ import annotations

import pytest

from hotline.web.ratelimit import SWEEP_EVERY, RateLimiter, WindowStorage, parse_rate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_windows_count_per_key_and_expire() -> None:
    clock = Clock()
    limiter = RateLimiter("2/second", "3/minute", clock)
    assert [await limiter.subscriber_allows("a") for _ in range(3)] == [True, True, False]
    assert await limiter.subscriber_allows("b")  # another subscriber has their own window
    clock.now += 1.01
    assert await limiter.subscriber_allows("a")  # a new window
    assert [await limiter.gateway_allows("africastalking") for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert await limiter.gateway_allows("twilio")
    clock.now += 60.01
    assert await limiter.gateway_allows("africastalking")
    await limiter.close()


async def test_storage_sweeps_expired_windows() -> None:
    clock = Clock()
    storage = WindowStorage(clock)
    for i in range(100):
        await storage.incr(f"old-{i}", 1)
    clock.now += 2
    assert await storage.get("old-1") == 0
    for _ in range(SWEEP_EVERY):
        await storage.incr("live", 60)
    assert await storage.get("live") == SWEEP_EVERY
    assert await storage.reset() == 1  # the 100 expired windows were swept
    assert await storage.get_expiry("live") > 0


def test_bad_rate() -> None:
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate("lots")
