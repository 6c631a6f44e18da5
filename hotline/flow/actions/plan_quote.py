"""`plan.quote`: an offer named by its code (an SMS `BL 38`), quoted for confirmation."""

from __future__ import annotations

import unicodedata

from hotline.base.errors import UpstreamError
from hotline.flow.actions.base import ERROR, OK, ActionContext, ArgSpec, action
from hotline.flow.actions.plan_common import (
    QUOTE_SETS,
    RESULT_SETS,
    error_outcome,
    quote,
    result,
)

__all__ = ["plan_quote"]


@action(
    "plan.quote",
    args=(ArgSpec("var", "str", required=False, doc="the input holding the code"),),
    sets={**QUOTE_SETS, **RESULT_SETS},
    outcomes=("unknown", "not_found", "limited"),
)
async def plan_quote(ctx: ActionContext) -> str:
    """Find the offer whose code is in `var` (default `plan_code`; any case and width)
    among those open to the subscriber and quote it like `plan.pick`. Outcomes: `ok`,
    `unknown` (no such offer for them; flag `plan_unknown_code`), `not_found`, `limited`,
    `error`.

    ```yaml
    plan_sms_quote:
      kind: action
      action: plan.quote
      next: plan_confirm
      on: { unknown: plan_unknown_code }
      on_error: plan_busy
    ```
    """
    service = ctx.services.plans
    if service is None:
        return ERROR
    raw = str(ctx.variables.get(str(ctx.args.get("var", "plan_code")), ""))
    code = unicodedata.normalize("NFKC", raw).strip().casefold()
    try:
        offers = await service.offers(ctx.subscriber)
    except UpstreamError as exc:
        return error_outcome(exc, "offers")
    offer = next((o for o in offers if o.code.casefold() == code), None)
    if offer is None:
        result(ctx, "unknown_code")
        return "unknown"
    quote(ctx, offer, needs_password=service.require_password)
    return OK
