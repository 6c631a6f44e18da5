"""The provider interface and the one place a configured provider stack is built.

`fetch(msisdn)` is the whole interface. It returns a `BalanceSnapshot` (a suspended or
barred account is a snapshot, not an error) or raises one of `hotline.base.errors`:
`UpstreamTimeout`, `UpstreamUnavailable`, `InvalidUpstreamAnswer`, `UpstreamNotFound`,
`RateLimited`.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry

from hotline.balance.ledger import LedgerProvider, open_ledger
from hotline.balance.metrics import BalanceMetrics
from hotline.balance.model import BalanceSnapshot
from hotline.balance.msisdn import canonical_msisdn
from hotline.balance.resilience import (
    Breaker,
    Bulkhead,
    Cache,
    Deadline,
    Metered,
    Retry,
    SingleFlight,
    SubscriberLimit,
)
from hotline.base.config import BalanceSettings, Settings
from hotline.base.privacy import Pseudonymizer, normalize_msisdn

__all__ = ["BalanceProvider", "build_stack", "open_provider", "subscriber_key"]


@runtime_checkable
class BalanceProvider(Protocol):
    """Anything that can tell one subscriber's balance."""

    name: str

    async def fetch(self, msisdn: str) -> BalanceSnapshot: ...

    async def close(self) -> None: ...


def subscriber_key(pseudonym: Pseudonymizer) -> Callable[[str], str]:
    """Cache / single-flight / limit key: the pseudonym of the canonical number.

    Remembered per raw number like the pseudonyms themselves: on a warm cache hit the
    canonicalization was half of the lookup's cost.
    """

    @functools.lru_cache(maxsize=8192)
    def key(msisdn: str) -> str:
        try:
            return pseudonym(canonical_msisdn(msisdn))
        except ValueError:
            return pseudonym(normalize_msisdn(msisdn) or "-")

    return key


def build_stack(
    raw: BalanceProvider,
    config: BalanceSettings,
    pseudonym: Pseudonymizer,
    metrics: BalanceMetrics,
    *,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> BalanceProvider:
    """Wrap `raw` in the resilience layers, outside in:
    Cache → SingleFlight → SubscriberLimit → Deadline → Bulkhead → Breaker → Retry → Metered.
    """
    key = subscriber_key(pseudonym)
    provider: BalanceProvider = Metered(raw, key, metrics)
    provider = Retry(
        provider,
        retries=config.retries,
        backoff=config.retry_backoff,
        min_budget=config.retry_min_budget,
        rng=rng,
        metrics=metrics,
    )
    provider = Breaker(
        provider,
        failures=config.breaker_failures,
        window=config.breaker_window,
        min_calls=config.breaker_min_calls,
        failure_rate=config.breaker_failure_rate,
        reset=config.breaker_reset,
        clock=clock,
        metrics=metrics,
    )
    provider = Bulkhead(
        provider, limit=config.max_concurrency, wait=config.bulkhead_wait, rate=config.upstream_rate
    )
    provider = Deadline(provider, config.deadline)
    provider = SubscriberLimit(provider, key, config.subscriber_rate, clock=clock)
    flight = SingleFlight(provider, key)
    cache = Cache(
        flight,
        key,
        fresh_ttl=config.fresh_ttl,
        max_stale=config.max_stale,
        negative_ttl=config.negative_ttl,
        maxsize=config.cache_size,
        clock=clock,
        metrics=metrics,
    )
    flight.settled = cache.remember
    return cache


async def _open_raw(settings: Settings, pseudonym: Pseudonymizer) -> BalanceProvider:
    config = settings.balance
    if config.provider == "http":
        from hotline.balance.http import HttpProvider

        return HttpProvider(config, pseudonym)
    store = open_ledger(config.ledger_path, seed_demo=config.ledger_seed_demo)
    return LedgerProvider(store, pseudonym, now=lambda: dt.datetime.now(dt.UTC))


@asynccontextmanager
async def open_provider(
    settings: Settings,
    pseudonym: Pseudonymizer,
    registry: CollectorRegistry | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> AsyncIterator[BalanceProvider]:
    """The configured provider (`ledger` or `http`) inside its resilience layers.

    Metrics go to `registry` (a private one if none is given); everything is closed
    on exit.
    """
    metrics = BalanceMetrics(registry if registry is not None else CollectorRegistry())
    raw = await _open_raw(settings, pseudonym)
    provider = build_stack(raw, settings.balance, pseudonym, metrics, clock=clock, rng=rng)
    try:
        yield provider
    finally:
        await provider.close()
