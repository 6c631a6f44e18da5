"""What the `plan.*` actions share (not an action): outcomes of upstream errors, the
quote a confirmation screen shows, and clearing variables an earlier step left."""

from __future__ import annotations

import datetime as dt
import logging

from hotline.base.errors import RateLimited, UpstreamError, UpstreamNotFound
from hotline.base.values import Date, Money, Text
from hotline.flow.actions.base import ActionContext, VariableType
from hotline.plans.ids import new_nonce
from hotline.plans.model import Offer, effective_date

__all__ = ["QUOTE_SETS", "RESULT_SETS", "clear", "error_outcome", "quote", "result"]

log = logging.getLogger(__name__)

#: What a quote sets (the confirmation screen reads them; `plan.order` reads them back).
QUOTE_SETS: dict[str, VariableType] = {
    "plan_offer": "text",
    "plan_change": "text",
    "plan_price": "money",
    "plan_date": "date",
    "plan_now": "flag",
    "plan_next_month": "flag",
    "plan_needs_password": "flag",
    "plan_offer_id": "str",
    "plan_nonce": "str",
    "plan_price_minor": "str",
}


#: The flags a result screen picks its sentence by: `plan_<outcome>` for the outcome
#: an action answered, and `plan_outcome` whenever there is one (an order whose outcome
#: is unknown — the action failed — shows "正在确认" by `unless: plan_outcome`).
RESULT_SETS: dict[str, VariableType] = {
    name: "flag"
    for name in (
        "plan_outcome",
        "plan_completed",
        "plan_accepted",
        "plan_insufficient_balance",
        "plan_not_eligible",
        "plan_already_has",
        "plan_withdrawn",
        "plan_unavailable",
        "plan_no_offers",
        "plan_unknown_code",
    )
}


def result(ctx: ActionContext, outcome: str | None) -> str | None:
    """Set the result flags for `outcome` (None: clear them); the outcome, for chaining."""
    clear(ctx, RESULT_SETS)
    if outcome is not None:
        ctx.set_flag("plan_outcome")
        flag = "plan_completed" if outcome == "ok" else f"plan_{outcome}"
        if flag in RESULT_SETS:
            ctx.set_flag(flag)
    return outcome


def error_outcome(exc: UpstreamError, what: str) -> str:
    """The outcome an upstream error stands for (`not_found`, `limited`, or `error`)."""
    if isinstance(exc, UpstreamNotFound):
        return "not_found"
    if isinstance(exc, RateLimited):
        return "limited"
    log.info("%s failed: %s", what, type(exc).__name__)
    return "error"


def clear(ctx: ActionContext, names: object) -> None:
    """Forget variables an earlier step set (so a `when:` never reads a stale one)."""
    for name in list(ctx.variables):
        if name in names:  # type: ignore[operator]
            del ctx.variables[name]
            ctx.values.pop(name, None)


def quote(ctx: ActionContext, offer: Offer, *, needs_password: bool) -> None:
    """Set the confirmation screen's values for `offer`, with a fresh order nonce."""
    clear(ctx, QUOTE_SETS)
    today = ctx.now().astimezone(ctx.timezone).date()
    ctx.set_value("plan_offer", Text(offer.name))
    ctx.set_value("plan_change", Text(offer.change))
    ctx.set_value("plan_price", Money(offer.price_minor, offer.currency))
    ctx.set_value("plan_date", Date(effective_date(offer.effect, today)))
    ctx.set_flag("plan_now" if offer.effect == "now" else "plan_next_month")
    ctx.set_flag("plan_needs_password", needs_password or offer.requires_password)
    ctx.variables["plan_offer_id"] = offer.id
    ctx.variables["plan_nonce"] = new_nonce()
    ctx.variables["plan_price_minor"] = str(offer.price_minor)


def local_today(ctx: ActionContext) -> dt.date:
    return ctx.now().astimezone(ctx.timezone).date()
