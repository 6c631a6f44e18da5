"""The layers around every provider, each a `BalanceProvider` wrapping another (reference §5).

Order, outside in (built by `hotline.balance.provider.build_stack`):

    Cache → SingleFlight → SubscriberLimit → Deadline → Bulkhead → Breaker → Retry → Metered → raw

Library where one fits: tenacity runs the retry loop, `limits` counts per-subscriber
quotas, aiolimiter paces the upstream, cachetools bounds the subscriber limit's windows.
Written by hand, because no library does it right (reference §5.5): single-flight with
`asyncio.shield` (a shared task awaited directly dies with its first caller), the
stale-while-revalidate cache labelled with `as_of` and a negative cache (an OrderedDict
bounded in size and age: it is read on every request), the breaker with consecutive + rate
window and *exactly one* half-open probe, the bulkhead's bounded wait, and the deadline
that a retry consults before it spends the remaining budget.
"""

from hotline.balance.resilience.breaker import Breaker, BreakerState, Bulkhead
from hotline.balance.resilience.cache import Cache
from hotline.balance.resilience.flight import SingleFlight, SubscriberLimit
from hotline.balance.resilience.metered import Metered
from hotline.balance.resilience.timing import Deadline, Retry, lookup_id, remaining_budget

__all__ = [
    "Breaker",
    "BreakerState",
    "Bulkhead",
    "Cache",
    "Deadline",
    "Metered",
    "Retry",
    "SingleFlight",
    "SubscriberLimit",
    "lookup_id",
    "remaining_budget",
]
