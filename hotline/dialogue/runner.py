"""Run a dialogue against a hotline base URL and judge every step.

A run never stops at the first surprise inside a step (all expectations of a step are
judged, so the report says everything wrong with that screen), but it does stop at the
first failed step: later steps would only report the consequences.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from hotline.dialogue.call import IvrPhone
from hotline.dialogue.phone import PhoneError, Screen, UssdPhone
from hotline.dialogue.script import Dialogue, Step

__all__ = ["DialogueResult", "StepResult", "run_dialogue"]


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    line: int
    screen: Screen | None
    problems: tuple[str, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class DialogueResult:
    dialogue: Dialogue
    steps: list[StepResult] = field(default_factory=list)
    skipped: str = ""
    failure: str = ""  # the dialogue could not run at all (the server did not start …)

    @property
    def ok(self) -> bool:
        return (
            not self.skipped
            and not self.failure
            and all(s.ok for s in self.steps)
            and len(self.steps) == len(self.dialogue.steps)
        )


def judge(step: Step, screen: Screen) -> tuple[str, ...]:
    """Everything about `screen` that contradicts `step`'s expectations."""
    problems = [f"expected {e.text!r}" for e in step.expect if not e.holds(screen.text)]
    problems += [f"did not expect {e.text!r}" for e in step.expect_not if e.holds(screen.text)]
    if step.expect_end is True and not screen.ends:
        problems.append("expected the session to end (END), it continues (CON)")
    if step.expect_end is False and screen.ends:
        problems.append("expected the session to continue (CON), it ended (END)")
    return tuple(problems)


async def run_dialogue(
    dialogue: Dialogue,
    base_url: str,
    http: aiohttp.ClientSession,
    speech_text: Callable[[str], str | None] | None = None,
) -> DialogueResult:
    """Play `dialogue` against `base_url` like a gateway (or voice platform) would.

    `speech_text` tells what a voice clip says; without it a call's `expect` can't be
    judged, so such a dialogue is skipped with the reason.
    """
    result = DialogueResult(dialogue)
    phone: UssdPhone | IvrPhone
    if dialogue.channel == "ivr":
        wants_text = any(s.expect or s.expect_not for s in dialogue.steps)
        if wants_text and speech_text is None:
            result.skipped = (
                "what a call says is only known in-process, from an IVR channel that "
                "publishes hotline.web.keys.SPEECH_TEXT"
            )
            return result
        phone = IvrPhone(http, base_url, dialogue.msisdn, speech_text)
    else:
        phone = UssdPhone(http, base_url, dialogue.msisdn)
    for index, step in enumerate(dialogue.steps):
        line = dialogue.step_lines[index] if index < len(dialogue.step_lines) else 0
        started = time.perf_counter()
        try:
            screen = await (
                phone.dial(step.dial) if step.dial is not None else phone.press(step.press or "")
            )
        except PhoneError as exc:
            result.steps.append(
                StepResult(step, line, None, (str(exc),), time.perf_counter() - started)
            )
            break
        problems = judge(step, screen)
        result.steps.append(StepResult(step, line, screen, problems, time.perf_counter() - started))
        if problems:
            break
    return result
