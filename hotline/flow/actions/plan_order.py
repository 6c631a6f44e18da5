"""`plan.order`: the confirmed quote becomes one order (see `hotline.plans.desk`)."""

from __future__ import annotations

import logging

from hotline.base.errors import UpstreamError
from hotline.base.values import Count, Text
from hotline.flow.actions.base import ERROR, OK, ActionContext, ArgSpec, VariableType, action
from hotline.flow.actions.plan_common import RESULT_SETS, error_outcome, result

__all__ = ["plan_order"]

log = logging.getLogger(__name__)

_REFUSALS = (
    "insufficient_balance",
    "not_eligible",
    "already_has",
    "withdrawn",
    "suspended",
    "unavailable",
)
_SETS: dict[str, VariableType] = {
    "plan_order_id": "text",
    "plan_tries_left": "int",
    "plan_locked": "flag",
    "plan_pw_tries": "str",
    **RESULT_SETS,
}


@action(
    "plan.order",
    args=(ArgSpec("password", "str", required=False, doc="the secret input's var"),),
    sets=_SETS,
    outcomes=("accepted", *_REFUSALS, "wrong_password", "locked", "not_found", "limited"),
)
async def plan_order(ctx: ActionContext) -> str:
    """Order the offer the confirmation screen quoted (`plan.pick` / `plan.quote`).

    When `plan_needs_password` is set, the service password is read from the secret
    input named by `password` (default `plan_password`; never stored) and checked
    first: `wrong_password` (with `plan_tries_left`) until `plans.password_tries`
    wrong ones, then `locked` for the rest of the session. The order id comes from the
    session's quote and the offer, so a retried or repeated confirmation is the same
    order. Sets `plan_order_id`, and for a result screen the flag `plan_<outcome>`
    (`plan_completed` for `ok`) with `plan_outcome`; none of them when the outcome is
    unknown (the action failed: say "正在确认", never "failed"). Outcomes: `ok` (completed), `accepted` (still in
    progress: the result follows by SMS), `insufficient_balance`, `not_eligible`,
    `already_has`, `withdrawn` (gone or repriced since the quote), `suspended`,
    `unavailable` (the ordering system refused or is down: nothing charged),
    `wrong_password`, `locked`, `not_found`, `limited`, `error`.

    ```yaml
    plan_order:
      kind: action
      action: plan.order
      next: plan_done
      on: { accepted: plan_accepted, insufficient_balance: plan_insufficient,
            wrong_password: plan_password_again, locked: plan_locked }
      on_error: plan_checking
    ```
    """
    service = ctx.services.plans
    offer_id = ctx.variables.get("plan_offer_id")
    nonce = ctx.variables.get("plan_nonce")
    price = str(ctx.variables.get("plan_price_minor", ""))
    if service is None or not isinstance(offer_id, str) or not isinstance(nonce, str):
        return ERROR
    if not price.isdigit():
        return ERROR
    result(ctx, None)  # an order whose outcome stays unknown shows "正在确认"
    try:
        if ctx.variables.get("plan_needs_password"):
            if ctx.variables.get("plan_locked"):
                return "locked"
            password = ctx.secrets.get(str(ctx.args.get("password", "plan_password")))
            if password is None or not await service.verify_password(ctx.subscriber, password):
                tries = int(str(ctx.variables.get("plan_pw_tries", "0")) or "0") + 1
                ctx.variables["plan_pw_tries"] = str(tries)
                if tries >= service.password_tries:
                    ctx.set_flag("plan_locked")
                    return "locked"
                ctx.set_value("plan_tries_left", Count(service.password_tries - tries))
                return "wrong_password"
        oid = service.order_id(ctx.subscriber, nonce, offer_id)
        ctx.set_value("plan_order_id", Text(oid))
        placed = await service.place(ctx.subscriber, offer_id, int(price), oid, ctx.language)
    except UpstreamError as exc:
        return error_outcome(exc, "order")
    outcome = placed.outcome
    if placed.pending:
        return result(ctx, "accepted") or ERROR
    if outcome.state == "completed":
        return result(ctx, OK) or ERROR
    reason = outcome.reason or "unavailable"
    return result(ctx, reason if reason in _REFUSALS else "unavailable") or ERROR
