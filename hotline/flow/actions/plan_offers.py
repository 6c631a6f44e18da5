"""`plan.offers`: one page of the offers open to the subscriber, into numbered slots."""

from __future__ import annotations

from hotline.base.errors import UpstreamError
from hotline.base.values import Count, Money, Text
from hotline.flow.actions.base import ERROR, OK, ActionContext, ArgSpec, VariableType, action
from hotline.flow.actions.plan_common import RESULT_SETS, clear, error_outcome, result

__all__ = ["SLOTS", "plan_offers"]

#: Offer slots a screen has (`offer_1` … `offer_3`); `plans.page_size` is at most this.
SLOTS = 3
_SETS: dict[str, VariableType] = {
    **{f"offer_{i}": "text" for i in range(1, SLOTS + 1)},
    **{f"offer_{i}_price": "money" for i in range(1, SLOTS + 1)},
    **{f"offer_{i}_change": "text" for i in range(1, SLOTS + 1)},
    **{f"offer_{i}_monthly": "flag" for i in range(1, SLOTS + 1)},
    "plan_more": "flag",
    "plan_page": "int",
    "plan_pages": "int",
    "plan_bad_choice": "flag",
    "plan_page_ids": "str",
    "plan_page_no": "str",
    **RESULT_SETS,
}


@action(
    "plan.offers",
    args=(ArgSpec("page", "str", required=False, doc="`first` (default) or `next`"),),
    sets=_SETS,
    outcomes=("none", "not_found", "limited"),
)
async def plan_offers(ctx: ActionContext) -> str:
    """Fill `offer_1`…`offer_3` (name), `offer_N_price`, `offer_N_change` (what it
    changes) and `offer_N_monthly` (a monthly fee) with one page of offers; `plan_more`
    when another page follows (`page: next` shows it, wrapping to the first), and
    `plan_page`/`plan_pages`. Prices come from the provider at every page.
    Outcomes: `ok`, `none` (nothing is open to them; flag `plan_no_offers`), `not_found`,
    `limited`, `error`.

    ```yaml
    plan_offers_next:
      kind: action
      action: plan.offers
      args: { page: next }
      next: plan_list
      on: { none: plan_no_offers }
      on_error: plan_busy
    ```
    """
    service = ctx.services.plans
    if service is None:
        return ERROR
    try:
        found = list(await service.offers(ctx.subscriber))
    except UpstreamError as exc:
        return error_outcome(exc, "offers")
    size = max(1, min(SLOTS, service.page_size))
    pages = max(1, -(-len(found) // size))
    page = 0
    if ctx.args.get("page") == "next":
        page = int(str(ctx.variables.get("plan_page_no", "0")) or "0") + 1
        page = 0 if page >= pages else page
    clear(ctx, _SETS)
    if not found:
        result(ctx, "no_offers")
        return "none"
    shown = found[page * size : (page + 1) * size]
    for slot, offer in enumerate(shown, 1):
        ctx.set_value(f"offer_{slot}", Text(offer.name))
        ctx.set_value(f"offer_{slot}_price", Money(offer.price_minor, offer.currency))
        ctx.set_value(f"offer_{slot}_change", Text(offer.change))
        ctx.set_flag(f"offer_{slot}_monthly", offer.effect == "next_month")
    ctx.set_flag("plan_more", pages > 1)
    ctx.set_value("plan_page", Count(page + 1))
    ctx.set_value("plan_pages", Count(pages))
    ctx.variables["plan_page_no"] = str(page)
    ctx.variables["plan_page_ids"] = ",".join(o.id for o in shown)
    return OK
