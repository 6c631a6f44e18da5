"""`reminder.subscribe`: turn on top-up reminders with a threshold (元)."""

from __future__ import annotations

from hotline.base.values import Count, Text
from hotline.flow.actions.base import ERROR, OK, ActionContext, ArgSpec, action

__all__ = ["reminder_subscribe"]


#: `KTTX LL 10`: the word naming a bundle rule, and the outcome that asks for its value.
_BUNDLE_WORDS = {"LL": "data", "YY": "voice", "DQ": "expiry"}


def _bundle_word(ctx: ActionContext) -> str | None:
    name = ctx.args.get("input")
    typed = ctx.variables.get(name) if isinstance(name, str) else None
    return _BUNDLE_WORDS.get(typed.strip().upper()) if isinstance(typed, str) else None


def _amount(ctx: ActionContext) -> int | None:
    """The threshold from `threshold:` (a menu option) or the session variable `input:`
    names (the amount typed after the SMS keyword, `KTTX 10`)."""
    fixed = ctx.args.get("threshold")
    if isinstance(fixed, int) and not isinstance(fixed, bool):
        return fixed
    name = ctx.args.get("input")
    typed = ctx.variables.get(name) if isinstance(name, str) else None
    if isinstance(typed, str) and typed.strip().isdigit() and len(typed.strip()) <= 6:
        return int(typed.strip())
    return None


@action(
    "reminder.subscribe",
    args=(
        ArgSpec("threshold", "int", required=False, doc="a fixed amount in 元, e.g. 10"),
        ArgSpec("input", "str", required=False, doc="the session variable holding a typed amount"),
        ArgSpec(
            "rule",
            "str",
            required=False,
            doc="balance.low (default, 元), data.low / voice.low (percent left), "
            "bundle.expiry (days ahead)",
        ),
    ),
    sets={"reminder_threshold": "int", "reminder_keyword": "text", "reminder_choices": "text"},
    outcomes=("invalid", *_BUNDLE_WORDS.values()),
)
async def reminder_subscribe(ctx: ActionContext) -> str:
    """Opt the subscriber in to low-balance reminders at `threshold` 元 (or the amount in
    the variable `input` names); consent is kept with the time and channel. `invalid`:
    the amount is not one offered (`reminders.thresholds`); `reminder_choices` lists them.
    Without `rule:`, a typed `LL`/`YY`/`DQ` (`KTTX LL 10`) answers `data`/`voice`/
    `expiry`, for the flow to take the bundle rule's value next.

    ```yaml
    reminder_set_10:
      kind: action
      action: reminder.subscribe
      args: { threshold: 10 }
      next: reminder_done
      on: { invalid: reminder_invalid }
      on_error: reminder_unavailable
    ```
    """
    service = ctx.services.reminders
    if service is None:
        return ERROR
    rule = ctx.args.get("rule")
    rule = rule if isinstance(rule, str) else "balance.low"
    try:
        offered = service.choices(rule)
    except ValueError:
        return ERROR  # a flow naming a rule this server does not know
    ctx.set_value("reminder_choices", Text("/".join(str(t) for t in offered)))
    word = _bundle_word(ctx) if "rule" not in ctx.args else None
    if word is not None:
        return word  # `KTTX LL …`: the flow asks (or takes the next word) for the value
    amount = _amount(ctx)
    if amount is None or amount not in offered:
        return "invalid"
    await service.subscribe(
        ctx.subscriber, amount, channel=ctx.channel, language=ctx.language, rule=rule
    )
    ctx.set_value("reminder_threshold", Count(amount))
    ctx.set_value("reminder_keyword", Text(service.keyword_off))
    return OK
