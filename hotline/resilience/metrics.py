"""Prometheus metrics of one service's calls, registered on the registry the app passes in.

Each service gets its own families under `hotline_<service>_…` (the balance service's are
`hotline_balance_upstream_seconds`, `hotline_balance_cache_hits_total`, …). Labels are
bounded (provider name, error kind, cache result): never a subscriber.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["CallMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SERVICE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class CallMetrics:
    """Upstream latency, errors by kind, retries, breaker state, cache hits and misses."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        if not _SERVICE.match(service):
            raise ValueError(f"service name {service!r} is not a metric name part")
        self.registry = registry
        self.service = service
        prefix = f"hotline_{service}"
        self.upstream_seconds = Histogram(
            f"{prefix}_upstream_seconds",
            f"Time of one upstream {service} attempt",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            f"{prefix}_upstream_errors",
            f"Failed upstream {service} attempts by kind",
            ["provider", "kind"],
            registry=registry,
        )
        self.retries = Counter(
            f"{prefix}_retries",
            f"Upstream {service} attempts that were retried",
            ["provider"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            f"{prefix}_breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            ["provider"],
            registry=registry,
        )
        self.cache_hits = Counter(
            f"{prefix}_cache_hits",
            f"{service.capitalize()} calls answered by the cache",
            ["provider", "result"],
            registry=registry,
        )
        self.cache_misses = Counter(
            f"{prefix}_cache_misses",
            f"{service.capitalize()} calls that went past the cache",
            ["provider"],
            registry=registry,
        )
