"""`subscriber.set_language`: switch the conversation language and remember it."""

from __future__ import annotations

from hotline.flow.actions.base import ERROR, OK, ActionContext, ArgSpec, action

__all__ = ["set_language"]


@action(
    "subscriber.set_language",
    args=(ArgSpec("language", "language", doc="one of the configured languages, e.g. en"),),
)
async def set_language(ctx: ActionContext) -> str:
    """Switch the conversation language and remember it for this number.

    ```yaml
    set_english:
      kind: action
      action: subscriber.set_language
      args: { language: en }
      next: main
      on_error: main
    ```
    """
    language = ctx.args.get("language")
    if not isinstance(language, str) or language not in ctx.languages:
        return ERROR
    ctx.new_language = language
    return OK
