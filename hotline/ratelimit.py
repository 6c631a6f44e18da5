"""Per-subscriber and per-gateway request limits (the `limits` package).

Subscribers are keyed by pseudonym, never by number. Counters live in the worker's
memory (fixed windows: one dict increment per check), so with N workers a subscriber
can get up to N times the configured rate; docs/operations.md says so. The storage is
created on first use, inside the running loop (`limits` schedules its expiry task there).
"""

from __future__ import annotations

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter

__all__ = ["RateLimiter", "parse_rate"]


def parse_rate(text: str) -> RateLimitItem:
    """`"30/minute"` → a limit item; `ValueError` with the expected form otherwise."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a rate like '30/minute' or '2000/second'") from exc


class RateLimiter:
    """Two fixed-window limits: one per subscriber pseudonym, one per gateway dialect."""

    def __init__(self, subscriber_rate: str, gateway_rate: str) -> None:
        self._subscriber = parse_rate(subscriber_rate)
        self._gateway = parse_rate(gateway_rate)
        self._storage: MemoryStorage | None = None
        self._strategy: FixedWindowRateLimiter | None = None

    def _limiter(self) -> FixedWindowRateLimiter:
        if self._strategy is None:
            self._storage = MemoryStorage()
            self._strategy = FixedWindowRateLimiter(self._storage)
        return self._strategy

    async def gateway_allows(self, dialect: str) -> bool:
        """Count one request from this gateway; False once it is over its rate."""
        return bool(await self._limiter().hit(self._gateway, "gw", dialect))

    async def subscriber_allows(self, pseudonym: str) -> bool:
        """Count one request from this subscriber; False once they are over their rate."""
        return bool(await self._limiter().hit(self._subscriber, "sub", pseudonym))

    async def close(self) -> None:
        if self._storage is None:
            return
        await self._storage.reset()
        timer = self._storage.timer
        if timer is not None and not timer.done():
            timer.cancel()
        self._storage = self._strategy = None
