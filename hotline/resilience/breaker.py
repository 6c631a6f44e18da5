"""Protecting the upstream: the circuit breaker and the bulkhead."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import ClassVar

from aiolimiter import AsyncLimiter

from hotline.resilience.base import Call, Layer, Monotonic, T, logger
from hotline.resilience.faults import BulkheadFull, CircuitOpen, counts_for_breaker
from hotline.resilience.metrics import CallMetrics

__all__ = ["Breaker", "BreakerState", "Bulkhead"]

# --- circuit breaker ----------------------------------------------------------------


class BreakerState:
    """Breaker states as the gauge reports them."""

    CLOSED: ClassVar[int] = 0
    OPEN: ClassVar[int] = 1
    HALF_OPEN: ClassVar[int] = 2
    NAMES: ClassVar[dict[int, str]] = {0: "closed", 1: "open", 2: "half_open"}


class Breaker(Layer[T]):
    """Opens on `failures` consecutive failures or a failure rate over a window.

    After `reset` seconds open, exactly one caller is let through as the probe; every
    other caller fails fast with `CircuitOpen` until the probe ends. A probe that the
    upstream answers (even with 404) closes the breaker; a failing probe reopens it; a
    cancelled probe frees the slot for the next caller.
    """

    def __init__(
        self,
        inner: Call[T],
        *,
        failures: int = 5,
        window: float = 30.0,
        min_calls: int = 20,
        failure_rate: float = 0.5,
        reset: float = 10.0,
        clock: Monotonic = time.monotonic,
        metrics: CallMetrics | None = None,
    ) -> None:
        super().__init__(inner)
        self.failures = failures
        self.window = window
        self.min_calls = min_calls
        self.failure_rate = failure_rate
        self.reset = reset
        self._clock = clock
        self._metrics = metrics
        self._log = logger(metrics.service if metrics else "upstream")
        self.state = BreakerState.CLOSED
        self._consecutive = 0
        self._calls: deque[tuple[float, bool]] = deque()
        self._opened_at = 0.0
        self._probe_out = False
        self._set_state(BreakerState.CLOSED)

    def _set_state(self, state: int) -> None:
        if state != self.state:
            self._log.warning(
                "%s breaker %s -> %s (provider=%s)",
                self._metrics.service if self._metrics else "upstream",
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

    async def fetch(self, key: str, /) -> T:
        probe = self._admit()
        try:
            result = await self.inner.fetch(key)
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


class Bulkhead(Layer[T]):
    """At most `limit` calls in the upstream at once; a caller waits at most `wait` s.

    Optionally paces the upstream to `rate` requests a second (aiolimiter), for
    providers with a contracted QPS.
    """

    def __init__(
        self, inner: Call[T], *, limit: int, wait: float = 0.1, rate: float | None = None
    ) -> None:
        super().__init__(inner)
        self._semaphore = asyncio.Semaphore(limit)
        self.wait = wait
        self._pacer = AsyncLimiter(rate, 1.0) if rate else None

    async def fetch(self, key: str, /) -> T:
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
            return await self.inner.fetch(key)
        finally:
            self._semaphore.release()
