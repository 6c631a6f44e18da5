"""The balance cache stays bounded in size and age without a sweep over all entries."""

from __future__ import annotations

import contextlib
from typing import Any

from hotline.base.errors import UpstreamNotFound
from hotline.resilience.cache import Cache
from tests.balance.conftest import FakeClock


class Counting:
    """An inner provider that answers every number with a fresh object."""

    name = "stub"

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def fetch(self, msisdn: str) -> Any:
        self.calls.append(msisdn)
        if msisdn.startswith("0"):
            raise UpstreamNotFound("nobody")
        return object()

    async def close(self) -> None:
        pass


def make(clock: FakeClock, maxsize: int = 1000) -> tuple[Cache, Counting]:
    inner = Counting()
    cache = Cache(
        inner, lambda n: n, fresh_ttl=5, max_stale=60, negative_ttl=30, maxsize=maxsize, clock=clock
    )
    return cache, inner


async def test_the_least_recently_written_answer_goes_first_when_full() -> None:
    clock = FakeClock()
    cache, inner = make(clock, maxsize=2)
    first = await cache.fetch("1")
    await cache.fetch("2")
    clock.advance(6)
    await cache.fetch("1")  # refreshed: now the newest write
    clock.advance(1)
    await cache.fetch("3")  # full: "2" goes, "1" stays
    assert len(cache._entries) == 2 and set(cache._entries) == {"1", "3"}
    assert await cache.fetch("1") is not first  # the refreshed answer, from the cache
    assert inner.calls == ["1", "2", "1", "3"]


async def test_answers_past_every_bound_are_dropped_on_the_next_write() -> None:
    clock = FakeClock()
    cache, inner = make(clock)
    for number in ("1", "2", "01"):
        with contextlib.suppress(UpstreamNotFound):
            await cache.fetch(number)
    clock.advance(61)  # older than max_stale and negative_ttl: useless
    await cache.fetch("3")
    assert list(cache._entries) == ["3"]
    assert inner.calls == ["1", "2", "01", "3"]
