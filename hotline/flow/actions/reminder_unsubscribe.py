"""`reminder.unsubscribe`: turn top-up reminders off."""

from __future__ import annotations

from hotline.flow.actions.base import ERROR, OK, ActionContext, action

__all__ = ["reminder_unsubscribe"]


@action("reminder.unsubscribe", outcomes=("not_subscribed",))
async def reminder_unsubscribe(ctx: ActionContext) -> str:
    """Opt the subscriber out of reminders (kept in the consent log with the channel).
    `not_subscribed`: there was nothing to turn off.

    ```yaml
    reminder_off:
      kind: action
      action: reminder.unsubscribe
      next: reminder_stopped
      on: { not_subscribed: reminder_none }
      on_error: reminder_unavailable
    ```
    """
    service = ctx.services.reminders
    if service is None:
        return ERROR
    if not await service.unsubscribe(ctx.subscriber, channel=ctx.channel):
        return "not_subscribed"
    return OK
