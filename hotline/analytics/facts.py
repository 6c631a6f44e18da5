"""What analytics keeps of one turn: a `Fact`, built off the request path.

The turn observer only stamps the time and keeps references (`Captured`); the flusher
turns them into facts here. A fact holds names and counts — channel, flow, version,
the state shown, what kind of request it was, the outcome it reached, the states an
input was refused at, the balance lookups' outcomes, a survey score — and the
subscriber's keyed pseudonym (for distinct counts only; it never reaches a figure).
Never the phone number, a balance or what the subscriber typed (DESIGN.md §10).

Outcomes (`Outcome`), decided by the turn that reached them:
- `result`: the flow showed a result (an end state the flow marks or infers as one);
- `error`: it ended politely on an error — an end state reached through a failing
  action (`on:`/`on_error`), too many invalid inputs, an apology, a refused session;
- `transfer`: `call.transfer` handed the call to an agent;
- `exit`: the subscriber chose to leave (an end state with `outcome: exit`, or
  `after_result: false`, e.g. the menu's "exit").
A session that reaches none of them was abandoned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from hotline.flow.events import ChannelEvent
from hotline.flow.model import ActionState, EndState, Flow
from hotline.flow.screen import Turn

__all__ = [
    "SURVEY_ACTION",
    "SURVEY_VAR",
    "TRANSFER_EVENT",
    "Captured",
    "Fact",
    "Outcome",
    "capture",
    "end_outcomes",
    "make_fact",
]

Outcome = Literal["result", "error", "transfer", "exit", ""]
#: What the observer keeps of a turn: flat strings, numbers and the events tuple — never
#: the turn or its record (holding those until a flush made the cyclic GC walk them:
#: measured +45 µs a turn in bench/analytics.py). Fields: time, channel, session id,
#: subscriber, request kind, events, state shown, flow, version, whether the reply
#: closed the conversation, the `stale` flag, the survey score variable.
Captured = tuple[float, str, str, str, str, tuple[str, ...], str, str, str, bool, object, object]


def capture(ts: float, event: ChannelEvent, turn: Turn, ends: bool) -> Captured:
    """The observer's whole work on the request path (a tuple of what `make_fact` needs)."""
    pending = turn.pending
    if pending is None:
        return (ts, event.channel, event.session_id, event.subscriber, event.kind,
                turn.events, turn.screen.state, "", "", ends, None, None)  # fmt: skip
    record = pending.record
    variables = record.vars
    return (ts, event.channel, event.session_id, event.subscriber, event.kind, turn.events,
            turn.screen.state, record.flow, record.version, ends,
            variables.get("stale"), variables.get(SURVEY_VAR))  # fmt: skip


TRANSFER_EVENT = "action:call.transfer:ok"
SURVEY_ACTION = "survey.score"
SURVEY_VAR = "survey_score"  # the validated score the survey action sets
_SURVEY_OK = f"action:{SURVEY_ACTION}:ok"
_LOOKUP = "action:balance.lookup:"
_KINDS = {"start": "s", "input": "i", "timeout": "t", "repeat": "r", "hangup": "h"}
# Closings the engine itself says (`ended:<catalog key>`): an error, or the goodbye
# after silences (no outcome: the caller went quiet, an abandonment).
_ERROR_CLOSINGS = ("error.", "nav.too_many_invalid")


@dataclass(frozen=True, slots=True)
class Fact:
    """One turn, as analytics keeps it (JSON array in Redis until its session settles)."""

    ts: float
    kind: str  # s start, i input, t timeout, r repeat key, h hangup
    state: str
    flow: str
    version: str
    channel: str
    subscriber: str  # keyed pseudonym
    started: bool
    outcome: Outcome
    ends: bool
    invalid: Sequence[str] = ()
    lookups: Sequence[str] = ()
    stale: bool = False
    score: int = 0

    def dump(self) -> list[object]:
        return [
            round(self.ts, 3),
            self.kind,
            self.state,
            self.flow,
            self.version,
            self.channel,
            self.subscriber,
            int(self.started),
            self.outcome,
            int(self.ends),
            list(self.invalid),
            list(self.lookups),
            int(self.stale),
            self.score,
        ]

    @classmethod
    def load(cls, data: list[object]) -> Fact:
        """The inverse of `dump`; raises `ValueError` on anything else."""
        if type(data) is not list or len(data) != 14:
            raise ValueError("malformed analytics fact")
        try:
            fact = cls(*data)  # type: ignore[arg-type]
            # Written by `dump` (`json` types): check the few whose type matters.
            if not (
                type(fact.state) is str
                and type(fact.flow) is str
                and type(fact.invalid) is list
                and type(fact.lookups) is list
                and type(fact.score) is int
            ):
                raise ValueError("malformed analytics fact")
        except TypeError as exc:
            raise ValueError(f"malformed analytics fact: {exc}") from exc
        return fact


def end_outcomes(flow: Flow) -> dict[str, Outcome]:
    """What reaching each end state of `flow` means: `outcome:` where the author says,
    else `error` for a state only failing actions lead to, `exit` for one that hangs up
    at once (`after_result: false`), `result` otherwise."""
    by_success: set[str] = set()
    by_failure: set[str] = set()
    for state in flow.states.values():
        if isinstance(state, ActionState):
            by_success.add(state.next)
            by_failure.update(state.on.values())
            by_failure.add(state.on_error)
    found: dict[str, Outcome] = {}
    for name, state in flow.states.items():
        if not isinstance(state, EndState):
            continue
        if state.outcome is not None:
            found[name] = state.outcome
        elif name in by_failure and name not in by_success:
            found[name] = "error"
        elif state.after_result is False:
            found[name] = "exit"
        else:
            found[name] = "result"
    return found


def make_fact(
    captured: Captured,
    pseudonym: Callable[[str], str],
    outcomes_of: Callable[[str, str], dict[str, Outcome]],
) -> Fact | None:
    """The fact of one observed turn; None for a turn that changed nothing (a gateway's
    repeated request, a refused one). `outcomes_of(flow, version)` classifies end states."""
    ts, channel, _, subscriber, kind, events, state, flow, version, ends, stale, raw = captured
    if events == ("repeated",) or events == ("refused",):
        return None
    outcome: Outcome = ""
    invalid: list[str] = []
    lookups: list[str] = []
    score = 0
    for name in events:
        if name.startswith("invalid:"):
            invalid.append(name[8:])
        elif name.startswith(_LOOKUP):
            lookups.append(name[len(_LOOKUP) :])
        elif name == TRANSFER_EVENT:
            outcome = "transfer"
        elif name == _SURVEY_OK:
            score = raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
        elif name == "apology" and not outcome:
            outcome = "error"
        elif name.startswith("ended:") and not outcome:
            ended = name[6:]
            if ended.startswith(_ERROR_CLOSINGS):
                outcome = "error"
            elif flow and "." not in ended:
                outcome = outcomes_of(flow, version).get(ended, "result")
    return Fact(
        ts=ts,
        kind=_KINDS.get(kind, "i"),
        state=state,
        flow=flow,
        version=version,
        channel=channel,
        subscriber=pseudonym(subscriber),
        started="started" in events or "restarted" in events,
        outcome=outcome,
        ends=ends or kind == "hangup",
        invalid=tuple(invalid),
        lookups=tuple(lookups),
        stale=bool(lookups) and bool(stale),
        score=score,
    )
