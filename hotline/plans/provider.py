"""The interface an operator's catalog and ordering system implements (`embedded`, `http`).

Reads (`inventory`, `catalog`, `lookup`, `verify_password`) are safe to repeat; `submit`
has effects and is idempotent by `OrderRequest.order_id` only because the provider
promises it (TMF622 `externalId`): the same id submitted twice is one order. Errors are
`hotline.base.errors`' upstream errors; `UpstreamNotFound` means the subscriber is
unknown to the provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hotline.plans.model import CurrentPlan, Offer, OrderOutcome, OrderRequest

__all__ = ["PlansProvider"]


class PlansProvider(Protocol):
    """One catalog + inventory + ordering system."""

    @property
    def name(self) -> str: ...

    async def inventory(self, msisdn: str, /) -> CurrentPlan:
        """The subscriber's current plan (TMF637 products)."""
        ...

    async def catalog(self, msisdn: str, /) -> Sequence[Offer]:
        """The offers open to the subscriber, in the order to show them."""
        ...

    async def verify_password(self, msisdn: str, password: str, /) -> bool:
        """Whether `password` is the subscriber's service password."""
        ...

    async def submit(self, request: OrderRequest, /) -> OrderOutcome:
        """Place the order; the same `order_id` again is the same order."""
        ...

    async def lookup(self, order_id: str, msisdn: str, /) -> OrderOutcome | None:
        """The order placed under `order_id`, or None if the system has none."""
        ...

    async def close(self) -> None: ...
