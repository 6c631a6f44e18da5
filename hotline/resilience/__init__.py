"""The layers around every service call that leaves the process (reference §5, DESIGN.md §13).

Each layer is a `Call[T]` wrapping another, so any service — balance lookups, plans,
declared http endpoints — composes the same ones. `build_stack` composes them, outside in:

    Cache → SingleFlight → SubscriberLimit → Deadline → Bulkhead → Breaker → Retry → Metered → raw

(the balance service's use is `hotline.balance.provider.build_stack`).

Library where one fits: tenacity runs the retry loop, `limits` parses per-subscriber
quotas, aiolimiter paces the upstream, cachetools bounds the subscriber limit's windows.
Written by hand, because no library does it right (reference §5.5): single-flight with
`asyncio.shield` (a shared task awaited directly dies with its first caller), the
stale-while-revalidate cache with a negative cache (an OrderedDict bounded in size and
age: it is read on every request), the breaker with consecutive + rate window and
*exactly one* half-open probe, the bulkhead's bounded wait, and the deadline that a retry
consults before it spends the remaining budget.
"""

from hotline.resilience.base import Call, FunctionCall, Key, Layer
from hotline.resilience.breaker import Breaker, BreakerState, Bulkhead
from hotline.resilience.cache import Cache
from hotline.resilience.faults import (
    BulkheadFull,
    CircuitOpen,
    UpstreamRefused,
    counts_for_breaker,
    error_kind,
    is_retryable,
)
from hotline.resilience.flight import SingleFlight, SubscriberLimit
from hotline.resilience.metered import Metered
from hotline.resilience.metrics import CallMetrics
from hotline.resilience.stack import Policy, build_stack
from hotline.resilience.timing import Deadline, Retry, lookup_id, remaining_budget

__all__ = [
    "Breaker",
    "BreakerState",
    "Bulkhead",
    "BulkheadFull",
    "Cache",
    "Call",
    "CallMetrics",
    "CircuitOpen",
    "Deadline",
    "FunctionCall",
    "Key",
    "Layer",
    "Metered",
    "Policy",
    "Retry",
    "SingleFlight",
    "SubscriberLimit",
    "UpstreamRefused",
    "build_stack",
    "counts_for_breaker",
    "error_kind",
    "is_retryable",
    "lookup_id",
    "remaining_budget",
]
