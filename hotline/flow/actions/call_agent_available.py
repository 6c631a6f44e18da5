"""`call.agent_available`: whether a call can be handed to an agent here."""

from __future__ import annotations

from hotline.flow.actions.base import OK, ActionContext, action

__all__ = ["agent_available"]


@action("call.agent_available", sets={"agent": "flag"})
async def agent_available(ctx: ActionContext) -> str:
    """Set `agent` when calls can be handed to an agent (`ivr.agent_number` is set).

    A menu option with `when: agent` is then offered only where it works.

    ```yaml
    voice_start:
      kind: action
      action: call.agent_available
      next: main
      on_error: main
    ```
    """
    ctx.set_flag("agent", bool(ctx.services.agent_number))
    return OK
