"""Per-subscriber and per-gateway request limits (the `limits` package).

Subscribers are keyed by pseudonym, never by number. `limits` parses the rates and
runs the fixed-window strategy; the counters live in `WindowStorage`, a small
in-memory storage of this worker: `limits`' own memory storage schedules an asyncio
task on nearly every hit to expire keys (measured: about 5 % of a USSD request's CPU),
while this one expires windows lazily on access and sweeps now and then. With N workers
a subscriber can get up to N times the configured rate; docs/operations.md says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter

__all__ = ["RateLimiter", "WindowStorage", "parse_rate"]

SWEEP_EVERY = 4096  # hits between sweeps of expired windows


def parse_rate(text: str) -> RateLimitItem:
    """`"30/minute"` → a limit item; `ValueError` with the expected form otherwise."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a rate like '30/minute' or '2000/second'") from exc


class WindowStorage(Storage):
    """Fixed-window counters in a dict: `{key: (window end, count)}`, no background work."""

    STORAGE_SCHEME = ["hotline-window-memory"]  # noqa: RUF012 - the base class declares it

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._hits = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def _live(self, key: str, now: float) -> tuple[float, int]:
        ends, count = self._windows.get(key, (0.0, 0))
        return (ends, count) if ends > now else (0.0, 0)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self._clock()
        ends, count = self._live(key, now)
        if not ends:
            ends = now + expiry
        count += amount
        self._windows[key] = (ends, count)
        self._hits += 1
        if self._hits % SWEEP_EVERY == 0:
            self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
        return count

    async def get(self, key: str) -> int:
        return self._live(key, self._clock())[1]

    async def get_expiry(self, key: str) -> float:
        now = self._clock()
        ends, _ = self._live(key, now)
        return time.time() + max(0.0, ends - now)

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        count = len(self._windows)
        self._windows.clear()
        return count

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)


class RateLimiter:
    """Two fixed-window limits: one per subscriber pseudonym, one per gateway dialect."""

    def __init__(
        self, subscriber_rate: str, gateway_rate: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._subscriber = parse_rate(subscriber_rate)
        self._gateway = parse_rate(gateway_rate)
        self._storage = WindowStorage(clock)
        self._strategy = FixedWindowRateLimiter(self._storage)

    async def gateway_allows(self, dialect: str) -> bool:
        """Count one request from this gateway; False once it is over its rate."""
        return bool(await self._strategy.hit(self._gateway, "gw", dialect))

    async def subscriber_allows(self, pseudonym: str) -> bool:
        """Count one request from this subscriber; False once they are over their rate."""
        return bool(await self._strategy.hit(self._subscriber, "sub", pseudonym))

    async def close(self) -> None:
        await self._storage.reset()
