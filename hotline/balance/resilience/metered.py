"""Latency and errors of every upstream attempt, as metrics and pseudonymous logs."""

from __future__ import annotations

import time

from hotline.balance.faults import error_kind
from hotline.balance.metrics import BalanceMetrics
from hotline.balance.model import BalanceSnapshot
from hotline.balance.resilience.base import Inner, Key, Layer, log
from hotline.base.errors import UpstreamError, UpstreamNotFound

__all__ = ["Metered"]


class Metered(Layer):
    """Times every upstream attempt and counts its errors by kind (never by subscriber)."""

    def __init__(self, inner: Inner, key: Key, metrics: BalanceMetrics) -> None:
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
