"""Time budget of a call: one overall deadline, and at most one retry that fits in it."""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from hotline.base.errors import UpstreamTimeout
from hotline.resilience.base import Call, Layer, T
from hotline.resilience.faults import UpstreamRefused, is_retryable
from hotline.resilience.metrics import CallMetrics

__all__ = ["Deadline", "Retry", "lookup_id", "remaining_budget"]

# --- deadline -----------------------------------------------------------------------

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "hotline_call_deadline", default=None
)


_LOOKUP_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hotline_call_id", default=None
)


def lookup_id() -> str:
    """The id of the current call (same for its retries): the upstream `X-Request-Id`."""
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


class Deadline(Layer[T]):
    """One overall budget per call, covering every attempt and every wait."""

    def __init__(self, inner: Call[T], seconds: float) -> None:
        super().__init__(inner)
        self.seconds = seconds

    async def fetch(self, key: str, /) -> T:
        loop = asyncio.get_running_loop()
        token = _DEADLINE.set(loop.time() + self.seconds)
        lookup = _LOOKUP_ID.set(_new_id())
        try:
            async with asyncio.timeout(self.seconds):
                return await self.inner.fetch(key)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer within {self.seconds:g} s") from exc
        finally:
            _DEADLINE.reset(token)
            _LOOKUP_ID.reset(lookup)


# --- retry --------------------------------------------------------------------------


class Retry(Layer[T]):
    """At most `retries` more attempts of a retryable failure, full jitter, within budget.

    A retry happens only if the wait (Retry-After, or at most `backoff`) plus
    `min_budget` for the attempt itself still fits in the remaining deadline.
    """

    def __init__(
        self,
        inner: Call[T],
        *,
        retries: int = 1,
        backoff: float = 0.05,
        min_budget: float = 0.2,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: CallMetrics | None = None,
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

    async def fetch(self, key: str, /) -> T:
        try:  # the first attempt pays nothing for the retry machinery (bench/balance.py)
            return await self.inner.fetch(key)
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
                result: T = await self.inner.fetch(key)
                return result
        raise AssertionError("unreachable: tenacity reraises the last failure")
