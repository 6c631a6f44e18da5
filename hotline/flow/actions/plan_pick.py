"""`plan.pick`: the subscriber's choice on an offers page, quoted for confirmation."""

from __future__ import annotations

from hotline.base.errors import UpstreamError
from hotline.flow.actions.base import ERROR, OK, ActionContext, ArgSpec, action
from hotline.flow.actions.plan_common import (
    QUOTE_SETS,
    RESULT_SETS,
    error_outcome,
    quote,
    result,
)

__all__ = ["MORE_KEY", "plan_pick"]

#: The key that shows the next page of offers.
MORE_KEY = "9"


@action(
    "plan.pick",
    args=(ArgSpec("var", "str", required=False, doc="the input holding the choice"),),
    sets={**QUOTE_SETS, **RESULT_SETS, "plan_bad_choice": "flag"},
    outcomes=("more", "invalid", "withdrawn", "not_found", "limited"),
)
async def plan_pick(ctx: ActionContext) -> str:
    """Read the choice (`var`, default `plan_choice`) against the page `plan.offers`
    showed: `9` → `more` (when `plan_more`); a shown slot → the offer as the provider
    prices it *now*, quoted for the confirmation screen (`plan_offer`, `plan_price`,
    `plan_date`, `plan_now` or `plan_next_month`, `plan_needs_password`); anything else
    → `invalid` with the flag `plan_bad_choice`. An offer gone since the page was shown
    → `withdrawn` (flag `plan_withdrawn`).

    ```yaml
    plan_pick:
      kind: action
      action: plan.pick
      next: plan_confirm
      on: { more: plan_offers_next, invalid: plan_list, withdrawn: plan_withdrawn }
      on_error: plan_busy
    ```
    """
    service = ctx.services.plans
    if service is None:
        return ERROR
    choice = str(ctx.variables.get(str(ctx.args.get("var", "plan_choice")), ""))
    ctx.set_flag("plan_bad_choice", False)
    if choice == MORE_KEY and ctx.variables.get("plan_more"):
        return "more"
    ids = [i for i in str(ctx.variables.get("plan_page_ids", "")).split(",") if i]
    if not (choice.isdigit() and 1 <= int(choice) <= len(ids)):
        ctx.set_flag("plan_bad_choice")
        return "invalid"
    try:
        offer = await service.offer(ctx.subscriber, ids[int(choice) - 1])
    except UpstreamError as exc:
        return error_outcome(exc, "offer")
    if offer is None:
        result(ctx, "withdrawn")
        return "withdrawn"
    quote(ctx, offer, needs_password=service.require_password)
    return OK
