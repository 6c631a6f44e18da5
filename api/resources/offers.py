"""`/me/offers`: the plans and add-on bundles open to the signed-in subscriber.

Read from `Services.plans` (`hotline.plans.desk.PlansDesk.offers`), the very list the
USSD menu 套餐 → 可选套餐 pages through: eligibility and prices come from the provider.
A price is integer minor units plus currency and the display string USSD would show.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.errors import ApiError
from api.models import Amount
from api.routing import ApiCall, ApiRoute
from hotline.base.errors import RateLimited, UpstreamError, UpstreamNotFound
from hotline.base.values import Money
from hotline.flow.services import PlansService
from hotline.i18n import TextFormatter
from hotline.plans.model import Offer, effective_date

__all__ = ["ORDER_ERRORS", "ROUTES", "OfferItem", "amount", "plans_of"]

log = logging.getLogger(__name__)
_FORMAT = TextFormatter()
#: What any plans call may answer besides the pipeline's own errors.
ORDER_ERRORS = ("subscriber_not_found", "upstream_unavailable", "account_suspended")


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class Included(_Body):
    """What an offer includes each period (0: nothing of that kind)."""

    data_bytes: int = Field(ge=0)
    voice_seconds: int = Field(ge=0)
    sms: int = Field(ge=0)


class OfferItem(_Body):
    id: str = Field(description="send it as `offer_id` to POST /me/orders")
    code: str = Field(description="the short code an SMS orders it by (`BL <code>`)")
    name: str
    kind: Literal["plan", "addon"]
    price: Amount = Field(description="what POST /me/orders must confirm as `price_minor`")
    effect: Literal["now", "next_month"] = Field(
        description="now: charged from the balance at once; next_month: the monthly fee "
        "from the first of next month"
    )
    effective_on: dt.date
    change: str = Field(description="what it changes, in a few words")
    includes: Included
    requires_password: bool


class OffersBody(_Body):
    offers: list[OfferItem]
    language: str


def amount(minor: int, currency: str, language: str) -> Amount:
    """Money as the API answers it: minor units, currency and the USSD display string."""
    money = Money(minor, currency)
    return Amount(
        minor=money.minor,
        currency=money.currency,
        exponent=money.exponent,
        display=_FORMAT.format(money, language),
    )


def plans_of(call: ApiCall) -> PlansService:
    plans = call.ctx.services.plans
    if plans is None:
        raise ApiError("upstream_unavailable", "no plans provider here", retry_after=30)
    return plans


def upstream_error(exc: UpstreamError) -> ApiError:
    """The API error for a plans provider's failure."""
    if isinstance(exc, UpstreamNotFound):
        return ApiError("subscriber_not_found")
    if isinstance(exc, RateLimited):
        return ApiError("rate_limited", "over the plans lookup rate", retry_after=60)
    log.info("plans lookup failed: %s", type(exc).__name__)
    return ApiError("upstream_unavailable", retry_after=5)


def offer_item(offer: Offer, today: dt.date, language: str) -> OfferItem:
    return OfferItem(
        id=offer.id,
        code=offer.code,
        name=offer.name,
        kind=offer.kind,
        price=amount(offer.price_minor, offer.currency, language),
        effect=offer.effect,
        effective_on=effective_date(offer.effect, today),
        change=offer.change,
        includes=Included(
            data_bytes=offer.allowance.data_bytes,
            voice_seconds=offer.allowance.voice_seconds,
            sms=offer.allowance.sms,
        ),
        requires_password=offer.requires_password,
    )


async def list_offers(call: ApiCall) -> OffersBody:
    plans = plans_of(call)
    try:
        current = await plans.current(call.msisdn)
        if current.status != "active":
            raise ApiError("account_suspended")
        found = await plans.offers(call.msisdn)
    except UpstreamError as exc:
        raise upstream_error(exc) from exc
    today = dt.datetime.now(call.ctx.zone).date()
    return OffersBody(
        offers=[offer_item(o, today, call.language) for o in found], language=call.language
    )


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "GET",
        "/me/offers",
        "listOffers",
        "The plans and add-on bundles the subscriber may order, priced by the provider",
        list_offers,
        OffersBody,
        scope="offers:read",
        errors=ORDER_ERRORS,
        description="The list USSD's 可选套餐 pages through, in the same order.",
    ),
)
