"""Latency and errors of every upstream attempt, as metrics and pseudonymous logs."""

from __future__ import annotations

import time

from hotline.base.errors import UpstreamError, UpstreamNotFound
from hotline.resilience.base import Call, Key, Layer, T, logger
from hotline.resilience.faults import error_kind
from hotline.resilience.metrics import CallMetrics

__all__ = ["Metered"]


class Metered(Layer[T]):
    """Times every upstream attempt and counts its errors by kind (never by subscriber)."""

    def __init__(self, inner: Call[T], key: Key, metrics: CallMetrics) -> None:
        super().__init__(inner)
        self._key = key
        self._metrics = metrics
        self._log = logger(metrics.service)
        self._latency = metrics.upstream_seconds.labels(self.name)

    async def fetch(self, raw: str, /) -> T:
        started = time.perf_counter()
        try:
            return await self.inner.fetch(raw)
        except UpstreamError as exc:
            kind = error_kind(exc)
            self._metrics.upstream_errors.labels(self.name, kind).inc()
            if not isinstance(exc, UpstreamNotFound):
                self._log.warning(
                    "%s upstream error (provider=%s, sub=%s, kind=%s): %s",
                    self._metrics.service,
                    self.name,
                    self._key(raw),
                    kind,
                    exc,
                )
            raise
        finally:
            self._latency.observe(time.perf_counter() - started)
