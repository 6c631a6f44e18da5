"""The layers around every provider, each a `BalanceProvider` wrapping another (reference §5).

Order, outside in (built by `hotline.balance.provider.build_stack`):

    Cache → SingleFlight → SubscriberLimit → Deadline → Bulkhead → Breaker → Retry → Metered → raw

Library where one fits: tenacity runs the retry loop, `limits` counts per-subscriber
quotas, aiolimiter paces the upstream, cachetools bounds the cache. Written by hand,
because no library does it right (reference §5.5): single-flight with `asyncio.shield`
(a shared task awaited directly dies with its first caller), the stale-while-revalidate
cache labelled with `as_of` and a negative cache, the breaker with consecutive + rate
window and *exactly one* half-open probe, the bulkhead's bounded wait, and the deadline
that a retry consults before it spends the remaining budget.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from aiolimiter import AsyncLimiter
from cachetools import TTLCache
from limits import parse as parse_rate
from prometheus_client import Counter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from hotline.balance.faults import (
    BulkheadFull,
    CircuitOpen,
    UpstreamRefused,
    counts_for_breaker,
    error_kind,
    is_retryable,
)
from hotline.balance.metrics import BalanceMetrics
from hotline.balance.model import BalanceSnapshot
from hotline.errors import RateLimited, UpstreamError, UpstreamNotFound, UpstreamTimeout

__all__ = [
    "Breaker",
    "BreakerState",
    "Bulkhead",
    "Cache",
    "Deadline",
    "Metered",
    "Retry",
    "SingleFlight",
    "SubscriberLimit",
    "lookup_id",
    "remaining_budget",
]

log = logging.getLogger("hotline.balance")

Key = Callable[[str], str]
Monotonic = Callable[[], float]


class _Provider(Protocol):
    name: str

    async def fetch(self, msisdn: str) -> BalanceSnapshot: ...

    async def close(self) -> None: ...


class _Layer:
    """A wrapper that forwards `name` and `close` to the provider it wraps."""

    def __init__(self, inner: _Provider) -> None:
        self.inner = inner
        self.name = inner.name

    async def close(self) -> None:
        await self.inner.close()


# --- deadline -----------------------------------------------------------------------

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "hotline_balance_deadline", default=None
)


_LOOKUP_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hotline_balance_lookup_id", default=None
)


def lookup_id() -> str:
    """The id of the current lookup (same for its retries): the upstream `X-Request-Id`."""
    return _LOOKUP_ID.get() or _new_id()


def _new_id() -> str:
    # A correlation id, not a secret: getrandbits is ~20x cheaper than uuid4's urandom.
    return f"{_IDS.getrandbits(96):024x}"


_IDS = random.Random()


def remaining_budget() -> float:
    """Seconds left before the enclosing `Deadline` fires (infinity outside one)."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return float("inf")
    return deadline - asyncio.get_running_loop().time()


class Deadline(_Layer):
    """One overall budget per lookup, covering every attempt and every wait."""

    def __init__(self, inner: _Provider, seconds: float) -> None:
        super().__init__(inner)
        self.seconds = seconds

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        loop = asyncio.get_running_loop()
        token = _DEADLINE.set(loop.time() + self.seconds)
        lookup = _LOOKUP_ID.set(_new_id())
        try:
            async with asyncio.timeout(self.seconds):
                return await self.inner.fetch(msisdn)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer within {self.seconds:g} s") from exc
        finally:
            _DEADLINE.reset(token)
            _LOOKUP_ID.reset(lookup)


# --- retry --------------------------------------------------------------------------


class Retry(_Layer):
    """At most `retries` more attempts of a retryable failure, full jitter, within budget.

    A retry happens only if the wait (Retry-After, or at most `backoff`) plus
    `min_budget` for the attempt itself still fits in the remaining deadline.
    """

    def __init__(
        self,
        inner: _Provider,
        *,
        retries: int = 1,
        backoff: float = 0.05,
        min_budget: float = 0.2,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: BalanceMetrics | None = None,
    ) -> None:
        super().__init__(inner)
        self.retries = retries
        self.backoff = backoff
        self.min_budget = min_budget
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._metrics = metrics

    @staticmethod
    def _retry_after(state: RetryCallState) -> float | None:
        exc = state.outcome.exception() if state.outcome else None
        return exc.retry_after if isinstance(exc, UpstreamRefused) else None

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number > self.retries:
            return True
        planned = self._retry_after(state)
        wait = self.backoff if planned is None else planned
        return wait + self.min_budget > remaining_budget()

    def _wait(self, state: RetryCallState) -> float:
        planned = self._retry_after(state)
        if planned is not None:
            return planned
        return self._rng.uniform(0, self.backoff)

    def _before_sleep(self, state: RetryCallState) -> None:
        if self._metrics is not None:
            self._metrics.retries.labels(self.name).inc()

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        try:  # the first attempt pays nothing for the retry machinery (bench/balance.py)
            return await self.inner.fetch(msisdn)
        except Exception as exc:
            if self.retries == 0 or not is_retryable(exc):
                raise
            first = exc
        retrying = AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception(is_retryable),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number == 1:
                    raise first  # tenacity decides on the failure we already have
                result: BalanceSnapshot = await self.inner.fetch(msisdn)
                return result
        raise AssertionError("unreachable: tenacity reraises the last failure")


# --- circuit breaker ----------------------------------------------------------------


class BreakerState:
    """Breaker states as the gauge reports them."""

    CLOSED: ClassVar[int] = 0
    OPEN: ClassVar[int] = 1
    HALF_OPEN: ClassVar[int] = 2
    NAMES: ClassVar[dict[int, str]] = {0: "closed", 1: "open", 2: "half_open"}


class Breaker(_Layer):
    """Opens on `failures` consecutive failures or a failure rate over a window.

    After `reset` seconds open, exactly one caller is let through as the probe; every
    other caller fails fast with `CircuitOpen` until the probe ends. A probe that the
    upstream answers (even with 404) closes the breaker; a failing probe reopens it; a
    cancelled probe frees the slot for the next caller.
    """

    def __init__(
        self,
        inner: _Provider,
        *,
        failures: int = 5,
        window: float = 30.0,
        min_calls: int = 20,
        failure_rate: float = 0.5,
        reset: float = 10.0,
        clock: Monotonic = time.monotonic,
        metrics: BalanceMetrics | None = None,
    ) -> None:
        super().__init__(inner)
        self.failures = failures
        self.window = window
        self.min_calls = min_calls
        self.failure_rate = failure_rate
        self.reset = reset
        self._clock = clock
        self._metrics = metrics
        self.state = BreakerState.CLOSED
        self._consecutive = 0
        self._calls: deque[tuple[float, bool]] = deque()
        self._opened_at = 0.0
        self._probe_out = False
        self._set_state(BreakerState.CLOSED)

    def _set_state(self, state: int) -> None:
        if state != self.state:
            log.warning(
                "balance breaker %s -> %s (provider=%s)",
                BreakerState.NAMES[self.state],
                BreakerState.NAMES[state],
                self.name,
            )
        self.state = state
        if self._metrics is not None:
            self._metrics.breaker_state.labels(self.name).set(state)

    def _admit(self) -> bool:
        """True if this call is the half-open probe; raises `CircuitOpen` to refuse."""
        if self.state == BreakerState.OPEN:
            if self._clock() - self._opened_at < self.reset:
                raise CircuitOpen("circuit open")
            self._set_state(BreakerState.HALF_OPEN)
            self._probe_out = False
        if self.state == BreakerState.HALF_OPEN:
            if self._probe_out:
                raise CircuitOpen("circuit half-open, probe in flight")
            self._probe_out = True
            return True
        return False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._consecutive = 0
        self._calls.clear()
        self._set_state(BreakerState.OPEN)

    def _record(self, failed: bool) -> None:
        now = self._clock()
        self._calls.append((now, failed))
        while self._calls and self._calls[0][0] < now - self.window:
            self._calls.popleft()
        self._consecutive = self._consecutive + 1 if failed else 0
        if not failed:
            return
        failed_calls = sum(1 for _, f in self._calls if f)
        by_rate = (
            len(self._calls) >= self.min_calls
            and failed_calls / len(self._calls) >= self.failure_rate
        )
        if self._consecutive >= self.failures or by_rate:
            self._open()

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        probe = self._admit()
        try:
            result = await self.inner.fetch(msisdn)
        except Exception as exc:
            failed = counts_for_breaker(exc)
            if probe:
                self._probe_out = False
                if failed:
                    self._open()
                else:
                    self._close()
            elif self.state == BreakerState.CLOSED:
                self._record(failed)
            raise
        except BaseException:
            if probe:
                self._probe_out = False
            raise
        if probe:
            self._probe_out = False
            self._close()
        elif self.state == BreakerState.CLOSED:
            self._record(False)
        return result

    def _close(self) -> None:
        self._consecutive = 0
        self._calls.clear()
        self._set_state(BreakerState.CLOSED)


# --- bulkhead -----------------------------------------------------------------------


class Bulkhead(_Layer):
    """At most `limit` lookups in the upstream at once; a caller waits at most `wait` s.

    Optionally paces the upstream to `rate` requests a second (aiolimiter), for
    providers with a contracted QPS.
    """

    def __init__(
        self, inner: _Provider, *, limit: int, wait: float = 0.1, rate: float | None = None
    ) -> None:
        super().__init__(inner)
        self._semaphore = asyncio.Semaphore(limit)
        self.wait = wait
        self._pacer = AsyncLimiter(rate, 1.0) if rate else None

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        if self._semaphore.locked():  # only a full bulkhead pays for the bounded wait
            try:
                async with asyncio.timeout(self.wait):
                    await self._semaphore.acquire()
            except TimeoutError as exc:
                raise BulkheadFull("bulkhead full") from exc
        else:
            await self._semaphore.acquire()
        try:
            if self._pacer is not None:
                await self._pacer.acquire()
            return await self.inner.fetch(msisdn)
        finally:
            self._semaphore.release()


# --- single-flight ------------------------------------------------------------------


class SingleFlight(_Layer):
    """Concurrent lookups of one subscriber share one upstream call.

    Waiters `await asyncio.shield(task)`, so cancelling one waiter (its USSD session
    timed out) never cancels the shared call the others are waiting on. `settled`
    (the cache's `remember`) runs *inside* the shared call, so the answer is cached
    before the call stops being joinable: a lookup arriving in between cannot start a
    second upstream call.
    """

    def __init__(self, inner: _Provider, key: Key) -> None:
        super().__init__(inner)
        self._key = key
        self._tasks: dict[str, asyncio.Task[BalanceSnapshot]] = {}
        self.settled: Callable[[str, BalanceSnapshot | UpstreamNotFound], None] | None = None

    async def _call(self, key: str, msisdn: str) -> BalanceSnapshot:
        try:
            result = await self.inner.fetch(msisdn)
        except UpstreamNotFound as exc:
            if self.settled is not None:
                self.settled(key, exc)
            raise
        if self.settled is not None:
            self.settled(key, result)
        return result

    def _done(self, key: str, task: asyncio.Task[BalanceSnapshot]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning if all waiters left

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        key = self._key(msisdn)
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(self._call(key, msisdn))
            self._tasks[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        return await asyncio.shield(task)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await super().close()


# --- per-subscriber limit -----------------------------------------------------------


class SubscriberLimit(_Layer):
    """At most `rate` (e.g. "10/minute") upstream lookups per subscriber, moving window.

    Over the limit raises `RateLimited`; the cache outside serves the last answer instead
    if it has one. `limits` parses the rate string; the counting is written here because
    `limits`' in-memory storage re-scans *every* key from a timer thread every 10 ms
    (measured: 2 ms per pass at 2 000 active subscribers, holding the GIL, growing
    linearly), and its asyncio variant hands each hit to a thread. Here a hit is a
    deque append in a bounded TTL map, on the injected clock.
    """

    def __init__(
        self,
        inner: _Provider,
        key: Key,
        rate: str,
        *,
        clock: Monotonic = time.monotonic,
        maxsize: int = 100_000,
    ) -> None:
        super().__init__(inner)
        self._key = key
        item = parse_rate(rate)
        self.amount = item.amount
        self.window = float(item.get_expiry())
        self._clock = clock
        self._hits: TTLCache[str, deque[float]] = TTLCache(
            maxsize=maxsize, ttl=self.window, timer=clock
        )

    def _hit(self, key: str) -> bool:
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.amount:
            return False
        hits.append(now)
        self._hits[key] = hits  # re-set: the entry lives a window past the latest hit
        return True

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        if not self._hit(self._key(msisdn)):
            raise RateLimited("subscriber over the lookup limit")
        return await self.inner.fetch(msisdn)


# --- cache --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    stored: float
    snapshot: BalanceSnapshot | None = None
    not_found: UpstreamNotFound | None = None


class Cache(_Layer):
    """Fresh for `fresh_ttl` s; then refetch, and on failure serve stale up to `max_stale`.

    A stale answer comes back with `stale=True` (the flows add "截至HH:MM" from `as_of`).
    `UpstreamNotFound` is remembered for `negative_ttl`. Only validated snapshots ever
    reach this layer, so an invalid upstream answer is never cached.
    """

    def __init__(
        self,
        inner: _Provider,
        key: Key,
        *,
        fresh_ttl: float,
        max_stale: float,
        negative_ttl: float,
        maxsize: int = 100_000,
        clock: Monotonic = time.monotonic,
        metrics: BalanceMetrics | None = None,
    ) -> None:
        super().__init__(inner)
        self._key = key
        self.fresh_ttl = fresh_ttl
        self.max_stale = max_stale
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._metrics = metrics
        ttl = max(fresh_ttl, max_stale, negative_ttl, 0.001)
        self._entries: TTLCache[str, _Entry] = TTLCache(maxsize=maxsize, ttl=ttl, timer=clock)
        self._counters: dict[str, Counter] = {}

    def _count(self, result: str) -> None:
        if self._metrics is None:
            return
        counter = self._counters.get(result)
        if counter is None:  # labelled children looked up once (labels() is not free)
            if result == "miss":
                counter = self._metrics.cache_misses.labels(self.name)
            else:
                counter = self._metrics.cache_hits.labels(self.name, result)
            self._counters[result] = counter
        counter.inc()

    def remember(self, key: str, outcome: BalanceSnapshot | UpstreamNotFound) -> None:
        """Store an answer (or a not-found) under a subscriber key."""
        if isinstance(outcome, UpstreamNotFound):
            self._entries[key] = _Entry(self._clock(), not_found=outcome)
        else:
            self._entries[key] = _Entry(self._clock(), snapshot=outcome)

    def invalidate(self, msisdn: str) -> None:
        """Forget one subscriber (after a top-up, say)."""
        self._entries.pop(self._key(msisdn), None)

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        key = self._key(msisdn)
        entry = self._entries.get(key)
        if entry is not None:
            age = self._clock() - entry.stored
            if entry.not_found is not None and age <= self.negative_ttl:
                self._count("negative")
                raise UpstreamNotFound("subscriber not found (cached)")
            if entry.snapshot is not None and age <= self.fresh_ttl:
                self._count("fresh")
                return entry.snapshot
        self._count("miss")
        try:
            snapshot = await self.inner.fetch(msisdn)
        except UpstreamNotFound as exc:
            self.remember(key, exc)
            raise
        except UpstreamError as exc:
            if (
                entry is not None
                and entry.snapshot is not None
                and self._clock() - entry.stored <= self.max_stale
            ):
                self._count("stale")
                log.warning("balance serving stale answer (sub=%s, cause=%s)", key, error_kind(exc))
                return entry.snapshot.as_stale()
            raise
        self.remember(key, snapshot)
        return snapshot


# --- metrics at the upstream edge ----------------------------------------------------


class Metered(_Layer):
    """Times every upstream attempt and counts its errors by kind (never by subscriber)."""

    def __init__(self, inner: _Provider, key: Key, metrics: BalanceMetrics) -> None:
        super().__init__(inner)
        self._key = key
        self._metrics = metrics
        self._latency = metrics.upstream_seconds.labels(self.name)

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        started = time.perf_counter()
        try:
            return await self.inner.fetch(msisdn)
        except UpstreamError as exc:
            kind = error_kind(exc)
            self._metrics.upstream_errors.labels(self.name, kind).inc()
            if not isinstance(exc, UpstreamNotFound):
                log.warning(
                    "balance upstream error (provider=%s, sub=%s, kind=%s): %s",
                    self.name,
                    self._key(msisdn),
                    kind,
                    exc,
                )
            raise
        finally:
            self._latency.observe(time.perf_counter() - started)
