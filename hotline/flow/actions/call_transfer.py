"""`call.transfer`: hand the call to an agent after the next end state is spoken."""

from __future__ import annotations

from hotline.flow.actions.base import OK, ActionContext, action

__all__ = ["transfer"]


@action("call.transfer", sets={"transfer_to": "str"}, outcomes=("unavailable",))
async def transfer(ctx: ActionContext) -> str:
    """Hand the call to an agent after the next end state is spoken.

    Sets `transfer_to` (the agent number); the end state reached next is spoken and
    the call is then dialled through. Outcomes: `ok`, `unavailable` (no agent number).

    ```yaml
    agent:
      kind: action
      action: call.transfer
      next: transferring       # kind: end, prompt: voice.transfer
      on: { unavailable: main }
      on_error: system_busy
    ```
    """
    number = ctx.services.agent_number
    if not number:
        return "unavailable"
    ctx.variables["transfer_to"] = number
    return OK
