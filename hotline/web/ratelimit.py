"""Per-subscriber and per-gateway request limits: fixed windows counted in this worker.

Subscribers are keyed by pseudonym, never by number. `limits` parses the rates
(`30/minute`, `5 per 30 seconds`); the counting is `limits`' fixed-window strategy
written out for one process: a window opens at a key's first hit and lasts the rate's
period, every hit counts (refused ones too), and a hit is allowed while the window's
count is within the rate. Hand-written because `limits`' async strategy and storage
cost ~5 µs of a request for this dict lookup (measured), and its memory storage
schedules an asyncio task on nearly every hit to expire keys; these windows expire
lazily on access and are swept now and then. With N workers a subscriber can get up
to N times the configured rate; docs/operations.md says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import RateLimitItem, parse

__all__ = ["RateLimiter", "WindowStorage", "parse_rate"]

SWEEP_EVERY = 4096  # hits between sweeps of expired windows


def parse_rate(text: str) -> RateLimitItem:
    """`"30/minute"` → a limit item; `ValueError` with the expected form otherwise."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a rate like '30/minute' or '2000/second'") from exc


class WindowStorage:
    """Fixed-window counters in a dict: `{key: (window end, count)}`, no background work."""

    __slots__ = ("_clock", "_hits", "_windows")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._hits = 0

    def count(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add `amount` to the key's live window (a new one lasts `expiry` s); the total."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            window = (now + expiry, amount)
        else:
            window = (window[0], window[1] + amount)
        self._windows[key] = window
        self._hits += 1
        if self._hits >= SWEEP_EVERY:
            self._hits = 0
            self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
        return window[1]

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.count(key, expiry, amount)

    async def get(self, key: str) -> int:
        window = self._windows.get(key)
        return window[1] if window is not None and window[0] > self._clock() else 0

    async def get_expiry(self, key: str) -> float:
        """When the key's window closes, as a `time.time()` timestamp."""
        now = self._clock()
        window = self._windows.get(key)
        ends = window[0] if window is not None else now
        return time.time() + max(0.0, ends - now)

    async def reset(self) -> int:
        count = len(self._windows)
        self._windows.clear()
        return count

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)


class _Limit:
    """One rate over its own windows: `allows(key)` counts a hit and says if it fits."""

    __slots__ = ("_amount", "_period", "windows")

    def __init__(self, item: RateLimitItem, clock: Callable[[], float]) -> None:
        self._amount = item.amount
        self._period = item.get_expiry()
        self.windows = WindowStorage(clock)

    def allows(self, key: str) -> bool:
        return self.windows.count(key, self._period) <= self._amount


class RateLimiter:
    """Two fixed-window limits: one per subscriber pseudonym, one per gateway dialect."""

    def __init__(
        self, subscriber_rate: str, gateway_rate: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._subscriber = _Limit(parse_rate(subscriber_rate), clock)
        self._gateway = _Limit(parse_rate(gateway_rate), clock)

    def gateway_ok(self, dialect: str) -> bool:
        """Count one request from this gateway; False once it is over its rate."""
        return self._gateway.allows(dialect)

    def subscriber_ok(self, pseudonym: str) -> bool:
        """Count one request from this subscriber; False once they are over their rate."""
        return self._subscriber.allows(pseudonym)

    async def gateway_allows(self, dialect: str) -> bool:
        """`gateway_ok` for callers that await (the guard calls the plain one: a coroutine
        per check cost ~1 k instructions for a dict lookup)."""
        return self._gateway.allows(dialect)

    async def subscriber_allows(self, pseudonym: str) -> bool:
        """`subscriber_ok` for callers that await."""
        return self._subscriber.allows(pseudonym)

    async def close(self) -> None:
        await self._subscriber.windows.reset()
        await self._gateway.windows.reset()
