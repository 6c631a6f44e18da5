"""Prometheus metrics of the balance path, registered on the registry the app passes in.

Labels are bounded (provider name, error kind, cache result): never a subscriber.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["BalanceMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class BalanceMetrics:
    """Upstream latency, errors by kind, retries, breaker state, cache hits and misses."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.upstream_seconds = Histogram(
            "hotline_balance_upstream_seconds",
            "Time of one upstream balance attempt",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "hotline_balance_upstream_errors",
            "Failed upstream balance attempts by kind",
            ["provider", "kind"],
            registry=registry,
        )
        self.retries = Counter(
            "hotline_balance_retries",
            "Upstream balance attempts that were retried",
            ["provider"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "hotline_balance_breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            ["provider"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "hotline_balance_cache_hits",
            "Balance lookups answered by the cache",
            ["provider", "result"],
            registry=registry,
        )
        self.cache_misses = Counter(
            "hotline_balance_cache_misses",
            "Balance lookups that went past the cache",
            ["provider"],
            registry=registry,
        )
