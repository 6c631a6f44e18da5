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

from hotline import resilience
from hotline.balance.ledger import LedgerProvider, open_ledger
from hotline.balance.model import BalanceSnapshot
from hotline.balance.msisdn import canonical_msisdn
from hotline.base.config import BalanceSettings, Settings
from hotline.base.privacy import Pseudonymizer, normalize_msisdn
from hotline.resilience.metrics import CallMetrics

__all__ = ["BalanceProvider", "BalanceStack", "build_stack", "open_provider", "subscriber_key"]

#: The configured provider inside its layers: a `BalanceProvider` whose outermost layer,
#: the cache, also says how long an answer counts as current (`fresh_for`).
BalanceStack = resilience.Cache[BalanceSnapshot]


@runtime_checkable
class BalanceProvider(Protocol):
    """Anything that can tell one subscriber's balance (a `Call[BalanceSnapshot]`)."""

    @property
    def name(self) -> str: ...

    async def fetch(self, msisdn: str, /) -> BalanceSnapshot: ...

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
    metrics: CallMetrics,
    *,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> BalanceStack:
    """Wrap `raw` in the resilience layers (`hotline.resilience.build_stack`), outside in:
    Cache → SingleFlight → SubscriberLimit → Deadline → Bulkhead → Breaker → Retry → Metered.

    A stale answer the cache serves is marked `stale=True` (the flows add "截至HH:MM").
    """
    stack = resilience.build_stack(
        raw,
        config,
        subscriber_key(pseudonym),
        metrics,
        mark_stale=BalanceSnapshot.as_stale,
        clock=clock,
        rng=rng,
    )
    assert isinstance(stack, resilience.Cache)  # a read: the cache is outermost
    return stack


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
) -> AsyncIterator[BalanceStack]:
    """The configured provider (`ledger` or `http`) inside its resilience layers.

    Metrics go to `registry` (a private one if none is given); everything is closed
    on exit.
    """
    metrics = CallMetrics(registry if registry is not None else CollectorRegistry(), "balance")
    raw = await _open_raw(settings, pseudonym)
    provider = build_stack(raw, settings.balance, pseudonym, metrics, clock=clock, rng=rng)
    try:
        yield provider
    finally:
        await provider.close()
