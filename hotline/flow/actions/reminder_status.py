"""`reminder.status`: whether the subscriber has a reminder, and at what amount."""

from __future__ import annotations

from hotline.base.values import Count, Text
from hotline.flow.actions.base import ERROR, OK, ActionContext, action

__all__ = ["reminder_status"]


@action(
    "reminder.status",
    sets={"reminder_on": "flag", "reminder_threshold": "int", "reminder_keyword": "text"},
)
async def reminder_status(ctx: ActionContext) -> str:
    """Set `reminder_on` and `reminder_threshold` (元) when the subscriber has an active
    reminder, for a menu that shows it and offers to turn it off.

    ```yaml
    reminders:
      kind: action
      action: reminder.status
      next: reminder_menu
      on_error: reminder_unavailable
    ```
    """
    service = ctx.services.reminders
    if service is None:
        return ERROR
    threshold = await service.threshold_of(ctx.subscriber)
    ctx.set_flag("reminder_on", threshold is not None)
    ctx.set_value("reminder_keyword", Text(service.keyword_off))
    if threshold is not None:
        ctx.set_value("reminder_threshold", Count(threshold))
    return OK
