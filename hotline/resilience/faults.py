"""How each upstream failure is treated: retried? counted by the breaker? (reference §7.2).

The error classes themselves are `hotline.base.errors`; these subclasses add the fields the
resilience layers need without the flows having to know them. They hold for any service
call, not only balance lookups: a service maps its transport's failures onto them.
"""

from __future__ import annotations

from hotline.base.errors import (
    InvalidUpstreamAnswer,
    RateLimited,
    UpstreamNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "BulkheadFull",
    "CircuitOpen",
    "UpstreamRefused",
    "counts_for_breaker",
    "error_kind",
    "is_retryable",
]


class UpstreamRefused(UpstreamUnavailable):
    """The upstream answered with an error status (5xx, 429, 401/403, 400)."""

    def __init__(
        self,
        status: int,
        code: str,
        *,
        retryable: bool,
        breaker: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"upstream refused: HTTP {status} {code}")
        self.status = status
        self.code = code
        self.retryable = retryable
        self.breaker = breaker
        self.retry_after = retry_after


class CircuitOpen(UpstreamUnavailable):
    """The breaker is open (or half-open with its one probe already out): fail fast."""


class BulkheadFull(UpstreamUnavailable):
    """Too many lookups are already waiting on the upstream."""


def is_retryable(exc: BaseException) -> bool:
    """Transport errors, timeouts and retryable statuses of an idempotent read."""
    if isinstance(exc, UpstreamRefused):
        return exc.retryable
    if isinstance(exc, CircuitOpen | BulkheadFull):
        return False
    return isinstance(exc, UpstreamTimeout | UpstreamUnavailable)


def counts_for_breaker(exc: BaseException) -> bool:
    """Timeouts, 5xx, connection errors and invalid bodies; never 4xx, 404 or 429."""
    if isinstance(exc, UpstreamRefused):
        return exc.breaker
    if isinstance(exc, CircuitOpen | BulkheadFull | UpstreamNotFound | RateLimited):
        return False
    return isinstance(exc, UpstreamTimeout | UpstreamUnavailable | InvalidUpstreamAnswer)


def error_kind(exc: BaseException) -> str:
    """A short, bounded label for metrics and logs."""
    match exc:
        case UpstreamRefused(status=429):
            return "rate_limited"
        case UpstreamRefused(status=401 | 403):
            return "auth"
        case UpstreamRefused():
            return "status"
        case CircuitOpen():
            return "circuit_open"
        case BulkheadFull():
            return "bulkhead_full"
        case UpstreamTimeout():
            return "timeout"
        case InvalidUpstreamAnswer():
            return "invalid"
        case UpstreamNotFound():
            return "not_found"
        case RateLimited():
            return "subscriber_limited"
        case UpstreamUnavailable():
            return "unavailable"
    return "other"
