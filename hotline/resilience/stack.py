"""The one composition of the layers, for any service call (DESIGN.md §13).

    reads:   Cache → SingleFlight → SubscriberLimit → Deadline → Bulkhead → Breaker → Retry → Metered → raw
    effects:                        SubscriberLimit → Deadline → Bulkhead → Breaker →         Metered → raw

A call with effects (an order, an outgoing message) is never retried, coalesced or
answered from a cache: those are only safe for idempotent reads.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol

from hotline.resilience.base import Call, Key, Monotonic, T
from hotline.resilience.breaker import Breaker, Bulkhead
from hotline.resilience.cache import Cache
from hotline.resilience.flight import SingleFlight, SubscriberLimit
from hotline.resilience.metered import Metered
from hotline.resilience.metrics import CallMetrics
from hotline.resilience.timing import Deadline, Retry

__all__ = ["Policy", "build_stack"]


class Policy(Protocol):
    """The settings a stack is built from (`BalanceSettings` is one)."""

    @property
    def deadline(self) -> float: ...
    @property
    def retries(self) -> int: ...
    @property
    def retry_backoff(self) -> float: ...
    @property
    def retry_min_budget(self) -> float: ...
    @property
    def breaker_failures(self) -> int: ...
    @property
    def breaker_window(self) -> float: ...
    @property
    def breaker_min_calls(self) -> int: ...
    @property
    def breaker_failure_rate(self) -> float: ...
    @property
    def breaker_reset(self) -> float: ...
    @property
    def max_concurrency(self) -> int: ...
    @property
    def bulkhead_wait(self) -> float: ...
    @property
    def upstream_rate(self) -> float | None: ...
    @property
    def subscriber_rate(self) -> str: ...
    @property
    def fresh_ttl(self) -> float: ...
    @property
    def max_stale(self) -> float: ...
    @property
    def negative_ttl(self) -> float: ...
    @property
    def cache_size(self) -> int: ...


def build_stack(
    raw: Call[T],
    policy: Policy,
    key: Key,
    metrics: CallMetrics,
    *,
    idempotent: bool = True,
    mark_stale: Callable[[T], T] | None = None,
    clock: Monotonic = time.monotonic,
    rng: random.Random | None = None,
) -> Call[T]:
    """Wrap `raw` in the layers, outside in (see the module docstring).

    `key` turns a call's key into the pseudonym the cache, single-flight and limit file
    it under; `mark_stale` labels an answer the cache serves past `fresh_ttl` because
    the upstream failed. A read's outermost layer is the `Cache`, whose `fresh_for` says
    how long an answer counts as current.
    """
    call: Call[T] = Metered(raw, key, metrics)
    if idempotent:
        call = Retry(
            call,
            retries=policy.retries,
            backoff=policy.retry_backoff,
            min_budget=policy.retry_min_budget,
            rng=rng,
            metrics=metrics,
        )
    call = Breaker(
        call,
        failures=policy.breaker_failures,
        window=policy.breaker_window,
        min_calls=policy.breaker_min_calls,
        failure_rate=policy.breaker_failure_rate,
        reset=policy.breaker_reset,
        clock=clock,
        metrics=metrics,
    )
    call = Bulkhead(
        call, limit=policy.max_concurrency, wait=policy.bulkhead_wait, rate=policy.upstream_rate
    )
    call = Deadline(call, policy.deadline)
    call = SubscriberLimit(call, key, policy.subscriber_rate, clock=clock)
    if not idempotent:
        return call
    flight = SingleFlight(call, key)
    cache = Cache(
        flight,
        key,
        fresh_ttl=policy.fresh_ttl,
        max_stale=policy.max_stale,
        negative_ttl=policy.negative_ttl,
        maxsize=policy.cache_size,
        clock=clock,
        metrics=metrics,
        mark_stale=mark_stale,
    )
    flight.settled = cache.remember
    return cache
