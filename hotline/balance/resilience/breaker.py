"""Protecting the upstream: the circuit breaker and the bulkhead."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import ClassVar

from aiolimiter import AsyncLimiter

from hotline.balance.faults import (
    BulkheadFull,
    CircuitOpen,
    counts_for_breaker,
)
from hotline.balance.metrics import BalanceMetrics
from hotline.balance.model import BalanceSnapshot
from hotline.balance.resilience.base import Inner, Layer, Monotonic, log

__all__ = ["Breaker", "BreakerState", "Bulkhead"]

# --- circuit breaker ----------------------------------------------------------------


class BreakerState:
    """Breaker states as the gauge reports them."""

    CLOSED: ClassVar[int] = 0
    OPEN: ClassVar[int] = 1
    HALF_OPEN: ClassVar[int] = 2
    NAMES: ClassVar[dict[int, str]] = {0: "closed", 1: "open", 2: "half_open"}


class Breaker(Layer):
    """Opens on `failures` consecutive failures or a failure rate over a window.

    After `reset` seconds open, exactly one caller is let through as the probe; every
    other caller fails fast with `CircuitOpen` until the probe ends. A probe that the
    upstream answers (even with 404) closes the breaker; a failing probe reopens it; a
    cancelled probe frees the slot for the next caller.
    """

    def __init__(
        self,
        inner: Inner,
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


class Bulkhead(Layer):
    """At most `limit` lookups in the upstream at once; a caller waits at most `wait` s.

    Optionally paces the upstream to `rate` requests a second (aiolimiter), for
    providers with a contracted QPS.
    """

    def __init__(
        self, inner: Inner, *, limit: int, wait: float = 0.1, rate: float | None = None
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
