"""`survey.score`: keep a satisfaction answer (1 to `scale`) for `hotline report`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hotline.flow.actions.base import OK, ActionContext, ArgIssue, ArgSpec, CheckEnv, action

__all__ = ["SCORE_VAR", "survey_score"]

#: The variable the score is kept in; operator analytics reads it (never a figure alone:
#: `hotline report` shows only distributions over at least `analytics.min_group` people).
SCORE_VAR = "survey_score"
MAX_SCALE = 9  # one key press


def _check(args: Mapping[str, Any], env: CheckEnv) -> Iterator[ArgIssue]:
    scale = args.get("scale", 5)
    if not isinstance(scale, int) or isinstance(scale, bool) or not 2 <= scale <= MAX_SCALE:
        yield ArgIssue("survey-scale", f"scale must be 2 to {MAX_SCALE}, got {scale!r}", ("scale",))


@action(
    "survey.score",
    args=(
        ArgSpec("var", "str", doc="the input state's variable holding the answer"),
        ArgSpec("scale", "int", required=False, doc="highest score (default 5; 2-9)"),
    ),
    sets={SCORE_VAR: "int"},
    outcomes=("invalid",),
    check_args=_check,
)
async def survey_score(ctx: ActionContext) -> str:
    """Keep the answer to a one-question satisfaction survey (1 to `scale`).

    The question is an `input` state before it (one key: USSD "1-5", voice "press 1 to
    5", an SMS reply) with `var: answer`, `pattern: "^[1-5]$"`, `max_length: 1` and
    `next:` this state. The action checks the answer and keeps it as `survey_score`
    (the typed answer is dropped), which `hotline report` and `/admin/analytics` count
    per flow version. An answer outside 1..scale is `invalid`.

    ```yaml
    survey_keep:
      kind: action
      action: survey.score
      args: { var: answer, scale: 5 }
      next: survey_thanks
      on: { invalid: survey_ask }
      on_error: survey_thanks
    ```
    """
    name = ctx.args.get("var")
    scale = ctx.args.get("scale", 5)
    if not isinstance(name, str):
        return "invalid"
    raw = ctx.variables.get(name)
    if not isinstance(scale, int) or not isinstance(raw, str) or not raw.isascii():
        return "invalid"
    if not raw.isdigit() or not 1 <= int(raw) <= scale:
        return "invalid"
    ctx.variables[SCORE_VAR] = int(raw)
    ctx.variables.pop(name, None)  # the score is kept once, as a number
    return OK
