"""Fresh, stale-if-error and negative answers, keyed by pseudonym."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic

from prometheus_client import Counter

from hotline.base.errors import UpstreamError, UpstreamNotFound
from hotline.resilience.base import Call, Key, Layer, Monotonic, T, logger
from hotline.resilience.faults import error_kind
from hotline.resilience.metrics import CallMetrics

__all__ = ["Cache"]


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    stored: float
    answer: T | None = None
    not_found: UpstreamNotFound | None = None


class Cache(Layer[T]):
    """Fresh for `fresh_ttl` s; then refetch, and on failure serve stale up to `max_stale`.

    A stale answer comes back through `mark_stale` (the balance service marks its snapshot
    `stale=True`, and the flows add "截至HH:MM" from `as_of`); without it, as is.
    `UpstreamNotFound` is remembered for `negative_ttl`. Only answers the inner call
    returned (validated) ever reach this layer, so an invalid upstream answer is never
    cached. For reads only: a call with effects is never answered from a cache.
    """

    def __init__(
        self,
        inner: Call[T],
        key: Key,
        *,
        fresh_ttl: float,
        max_stale: float,
        negative_ttl: float,
        maxsize: int = 100_000,
        clock: Monotonic = time.monotonic,
        metrics: CallMetrics | None = None,
        mark_stale: Callable[[T], T] | None = None,
    ) -> None:
        super().__init__(inner)
        self._key = key
        self.fresh_ttl = fresh_ttl
        self.max_stale = max_stale
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._metrics = metrics
        self._service = metrics.service if metrics else "upstream"
        self._log = logger(self._service)
        self._mark_stale = mark_stale
        # Oldest write first (every write moves its key to the end), bounded in size and
        # age: both the expired and the least recently written entries are at the front.
        # Not cachetools.TTLCache: its `get` was ~1 µs of a 2.6 µs warm hit; an
        # OrderedDict lookup is a C call, and the age checks in `fetch` already decide.
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._maxsize = maxsize
        self._ttl = max(fresh_ttl, max_stale, negative_ttl, 0.001)
        self._counters: dict[str, Counter] = {}

    @property
    def fresh_for(self) -> float:
        """Seconds an answer counts as current (`fresh_ttl`)."""
        return self.fresh_ttl

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

    def remember(self, key: str, outcome: T | UpstreamNotFound) -> None:
        """Store an answer (or a not-found) under a pseudonymous key."""
        now = self._clock()
        entries = self._entries
        if isinstance(outcome, UpstreamNotFound):
            entries[key] = _Entry(now, not_found=outcome)
        else:
            entries[key] = _Entry(now, answer=outcome)
        entries.move_to_end(key)
        horizon = now - self._ttl
        while entries:
            oldest, entry = next(iter(entries.items()))
            if len(entries) <= self._maxsize and entry.stored > horizon:
                break
            del entries[oldest]

    def forget(self, key: str, /) -> None:
        """Drop what is cached for `key` (its answer changed: a completed plan order)."""
        self._entries.pop(self._key(key), None)

    async def fetch(self, key: str, /) -> T:
        pseudonym = self._key(key)
        entry = self._entries.get(pseudonym)
        if entry is not None:
            age = self._clock() - entry.stored
            if entry.not_found is not None and age <= self.negative_ttl:
                self._count("negative")
                raise UpstreamNotFound("not found (cached)")
            if entry.answer is not None and age <= self.fresh_ttl:
                self._count("fresh")
                return entry.answer
        self._count("miss")
        try:
            answer = await self.inner.fetch(key)
        except UpstreamNotFound as exc:
            self.remember(pseudonym, exc)
            raise
        except UpstreamError as exc:
            if (
                entry is not None
                and entry.answer is not None
                and self._clock() - entry.stored <= self.max_stale
            ):
                self._count("stale")
                self._log.warning(
                    "%s serving stale answer (sub=%s, cause=%s)",
                    self._service,
                    pseudonym,
                    error_kind(exc),
                )
                stale = entry.answer
                return self._mark_stale(stale) if self._mark_stale is not None else stale
            raise
        self.remember(pseudonym, answer)
        return answer
