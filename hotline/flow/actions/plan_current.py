"""`plan.current`: the subscriber's plan into prompt values (name, fee, allowances,
renewal date, add-ons, a change waiting for next month)."""

from __future__ import annotations

from hotline.base.errors import UpstreamError
from hotline.base.values import Count, Date, Duration, Money, Text, Volume
from hotline.flow.actions.base import ERROR, OK, ActionContext, VariableType, action
from hotline.flow.actions.plan_common import clear, error_outcome

__all__ = ["plan_current"]

_SETS: dict[str, VariableType] = {
    "plan_name": "text",
    "plan_fee": "money",
    "plan_data": "volume",
    "plan_voice": "duration",
    "plan_sms": "int",
    "plan_renews": "date",
    "plan_addons": "text",
    "plan_pending": "text",
}


@action("plan.current", sets=_SETS, outcomes=("not_found", "suspended", "limited"))
async def plan_current(ctx: ActionContext) -> str:
    """Read the current plan from the plans provider.

    Sets `plan_name`, `plan_fee`, `plan_data`, `plan_voice`, `plan_sms`, `plan_renews`,
    and when there are any `plan_addons` (names) and `plan_pending` (next month's plan).
    Outcomes: `ok`, `not_found`, `suspended`, `limited`, `error`.

    ```yaml
    plan:
      kind: action
      action: plan.current
      next: plan_menu
      on: { not_found: unknown_number, suspended: account_suspended }
      on_error: plan_busy
    ```
    """
    service = ctx.services.plans
    if service is None:
        return ERROR
    try:
        plan = await service.current(ctx.subscriber)
    except UpstreamError as exc:
        return error_outcome(exc, "plan lookup")
    if plan.status != "active":
        return "suspended"
    clear(ctx, _SETS)
    ctx.set_value("plan_name", Text(plan.name))
    ctx.set_value("plan_fee", Money(plan.monthly_fee_minor, plan.currency))
    ctx.set_value("plan_data", Volume(plan.allowance.data_bytes))
    ctx.set_value("plan_voice", Duration(plan.allowance.voice_seconds))
    ctx.set_value("plan_sms", Count(plan.allowance.sms))
    if plan.renews_on is not None:
        ctx.set_value("plan_renews", Date(plan.renews_on))
    if plan.addons:
        ctx.set_value("plan_addons", Text("、".join(plan.addons)))
    if plan.pending:
        ctx.set_value("plan_pending", Text(plan.pending))
    return OK
