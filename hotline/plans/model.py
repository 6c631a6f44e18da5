"""The types of plan change: offers, the current plan, orders and their TMF622 states.

Amounts are integer minor units (fen). An `Offer` says what it costs and when it takes
effect (`now`: charged from the balance at once; `next_month`: a monthly fee from the
first of next month). Eligibility and prices come from the provider, never from a flow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = [
    "FINAL_STATES",
    "REASONS",
    "Allowance",
    "CurrentPlan",
    "Effect",
    "Offer",
    "OrderOutcome",
    "OrderReason",
    "OrderRequest",
    "OrderState",
    "effective_date",
]

#: TMF622 product order states (v4; `pending`/`assessingCancellation` are v5's).
OrderState = Literal[
    "acknowledged", "inProgress", "completed", "failed", "held", "rejected", "cancelled"
]
ORDER_STATES: tuple[str, ...] = get_args(OrderState)
FINAL_STATES = frozenset({"completed", "failed", "rejected", "cancelled"})
#: Why an order did not complete, each with its own sentence (`plan.reason_*`).
OrderReason = Literal[
    "insufficient_balance",
    "not_eligible",
    "already_has",
    "withdrawn",
    "suspended",
    "unavailable",
    "not_submitted",
]
REASONS: tuple[str, ...] = get_args(OrderReason)
Effect = Literal["now", "next_month"]


@dataclass(frozen=True, slots=True)
class Allowance:
    """What a plan or bundle includes each period (bytes, seconds, messages)."""

    data_bytes: int = 0
    voice_seconds: int = 0
    sms: int = 0


@dataclass(frozen=True, slots=True)
class Offer:
    """One plan or add-on bundle open to the subscriber, as the provider priced it.

    `code` is the short code an SMS names it by (`BL 38`); `change` says in a few words
    what it changes ("流量+10GB").
    """

    id: str
    code: str
    name: str
    kind: Literal["plan", "addon"]
    price_minor: int
    currency: str = "CNY"
    effect: Effect = "now"
    allowance: Allowance = field(default_factory=Allowance)
    change: str = ""
    requires_password: bool = False


@dataclass(frozen=True, slots=True)
class CurrentPlan:
    """The subscriber's plan now: its monthly fee, what it includes, when it renews."""

    name: str
    monthly_fee_minor: int
    currency: str
    allowance: Allowance
    renews_on: dt.date | None
    addons: tuple[str, ...] = ()
    pending: str | None = None  # a plan change waiting for the next period
    status: str = "active"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One confirmed order: `order_id` is the idempotency key (TMF622 `externalId`)."""

    order_id: str
    msisdn: str
    offer: Offer


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What the ordering system says of an order (or None fields while unknown)."""

    order_id: str
    state: OrderState
    reason: OrderReason | None = None
    upstream_id: str | None = None
    effective_on: dt.date | None = None
    charged_minor: int = 0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def effective_date(effect: Effect, today: dt.date) -> dt.date:
    """The day an offer takes effect: today, or the first of next month."""
    if effect == "now":
        return today
    return (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
