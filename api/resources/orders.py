"""`POST /me/orders` and `GET /me/orders/{order_id}`: order a plan or bundle, safely.

The client shows an offer's price (`GET /me/offers`), the subscriber confirms, and the
client sends that offer and price with an `Idempotency-Key` it drew for this one
confirmation. The order id is `plans.order_id(number, key, offer)` — the id USSD derives
from its session nonce — so a retry of the same request meets the same journalled order
and `PlansDesk.place` submits nothing twice. The key's first body is remembered in
Redis for a day (`ApiState.first_use`): the same key with another body is refused
rather than silently meaning the first order. A repriced or withdrawn offer is refused
(`offer_changed`); the subscriber must see the new price first. Receipts go through
the SMS outbox exactly as USSD's do (the desk sends them, once per order).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.errors import ApiError
from api.models import Amount
from api.resources.offers import ORDER_ERRORS, amount, plans_of, upstream_error
from api.routing import ApiCall, ApiRoute
from hotline.base.errors import UpstreamError
from hotline.plans.journal import JournalRow

__all__ = ["IDEMPOTENCY_HEADER", "ROUTES"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
KEY_TTL = 86_400  # a day: longer than any client retries one confirmation
#: Why an order did not complete → the error table's code.
_REASONS = {
    "insufficient_balance": "insufficient_balance",
    "not_eligible": "not_eligible",
    "already_has": "already_has",
    "withdrawn": "offer_changed",
    "suspended": "account_suspended",
}
_REFUSALS = (
    "idempotency_key_missing",
    "idempotency_key_reused",
    "offer_changed",
    "insufficient_balance",
    "not_eligible",
    "already_has",
    "ordering_unavailable",
)


class OrderCreate(BaseModel):
    """The offer and the price the subscriber confirmed (as `GET /me/offers` showed it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    offer_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    price_minor: int = Field(ge=0, le=10_000_000, description="the offer's `price.minor`")
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")


class OrderBody(BaseModel):
    """One order (TMF622 states) as the journal holds it."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    state: Literal[
        "acknowledged", "inProgress", "completed", "failed", "held", "rejected", "cancelled"
    ]
    pending: bool = Field(
        description="not final yet: an SMS tells the subscriber the outcome (已受理，结果将短信通知)"
    )
    reason: str | None = Field(None, description="why it did not complete (failed/rejected)")
    offer_id: str
    offer_name: str
    price: Amount
    charged: Amount
    effective_on: dt.date | None
    language: str


def _key(call: ApiCall) -> str:
    key = call.request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not KEY_PATTERN.match(key):
        raise ApiError(
            "idempotency_key_missing",
            f"send {IDEMPOTENCY_HEADER}: 8-64 letters, digits, - or _ (a UUID will do)",
        )
    return key


def order_body(row: JournalRow, language: str) -> OrderBody:
    return OrderBody(
        order_id=row.id,
        state=row.state,  # type: ignore[arg-type]
        pending=not row.final,
        reason=row.reason,
        offer_id=row.offer_id,
        offer_name=row.offer_name,
        price=amount(row.price_minor, row.currency, language),
        charged=amount(row.charged_minor, row.currency, language),
        effective_on=row.effective_on,
        language=language,
    )


async def place_order(call: ApiCall) -> OrderBody:
    key = _key(call)
    body = call.body
    assert isinstance(body, OrderCreate)
    ctx = call.ctx
    assert ctx.state is not None and call.subscriber is not None
    plans = plans_of(call)
    fingerprint = f"{body.offer_id}\x1f{body.price_minor}\x1f{body.currency}"
    first = await ctx.state.first_use(call.subscriber, key, fingerprint, KEY_TTL)
    if first is not None and first != fingerprint:
        raise ApiError("idempotency_key_reused", "this key was sent with another body")
    try:
        oid = plans.order_id(call.msisdn, key, body.offer_id)
        known = await plans.order(call.msisdn, oid)
        if known is not None and (known.price_minor, known.currency) != (
            body.price_minor,
            body.currency,
        ):  # Redis forgot the key, the journal did not
            raise ApiError("idempotency_key_reused", "this key was sent with another price")
        if known is None:
            offer = await plans.offer(call.msisdn, body.offer_id)
            if offer is not None and offer.currency != body.currency:
                raise ApiError("offer_changed", f"the offer is priced in {offer.currency}")
        placed = await plans.place(call.msisdn, body.offer_id, body.price_minor, oid, call.language)
        row = await plans.order(call.msisdn, oid)
    except UpstreamError as exc:
        raise upstream_error(exc) from exc
    outcome = placed.outcome
    if outcome.state in ("failed", "rejected", "cancelled"):
        code = _REASONS.get(outcome.reason or "", "ordering_unavailable")
        retry = 30 if code == "ordering_unavailable" else None
        raise ApiError(code, f"order {oid}: {outcome.state}", retry_after=retry)
    if row is None:  # refused before it was journalled: only `withdrawn` does that
        raise ApiError("offer_changed", f"order {oid}: not placed")
    return order_body(row, call.language)


async def get_order(call: ApiCall) -> OrderBody:
    oid = call.request.match_info["order_id"]
    if not re.fullmatch(r"PO[0-9A-F]{20}", oid):
        raise ApiError("order_not_found", "order ids look like PO followed by 20 hex digits")
    try:
        row = await plans_of(call).order(call.msisdn, oid)
    except UpstreamError as exc:
        raise upstream_error(exc) from exc
    if row is None:
        raise ApiError("order_not_found")
    return order_body(row, call.language)


_KEY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": True,
    "schema": {"type": "string", "pattern": KEY_PATTERN.pattern},
    "description": "drawn once per confirmation; resend it (same body) only to retry",
}

ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "POST",
        "/me/orders",
        "placeOrder",
        "Order an offer at the price the subscriber confirmed (idempotent per key)",
        place_order,
        OrderBody,
        scope="orders:write",
        body=OrderCreate,
        errors=(*ORDER_ERRORS, *_REFUSALS),
        description=(
            "Completed within the answer window: `state` completed. Otherwise `pending` "
            "is true (acknowledged/inProgress) and an SMS receipt follows. A refusal is a "
            "problem whose `code` says why; the same key and body answer the same again."
        ),
        extra={"parameters": [_KEY_PARAMETER]},
    ),
    ApiRoute(
        "GET",
        "/me/orders/{order_id}",
        "getOrder",
        "One of the subscriber's own orders, as the order journal holds it now",
        get_order,
        OrderBody,
        scope="orders:read",
        errors=("order_not_found", "upstream_unavailable"),
    ),
)
