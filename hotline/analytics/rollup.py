"""Rolling a settled session up into per-day counters (pure; no I/O here).

A session's facts (one per turn, in any order) become one `Summary`: its group (the
local day it started, channel, flow, flow version), its outcome, the steps and seconds
to that outcome, the states it visited, the inputs given and refused at each, where it
was left if it was abandoned, its survey score, and the balance lookups it made. The
summary turns into hash-field increments (`increments`) and distinct-subscriber
additions, gathered over many sessions in a `Rollup` that `hotline.analytics.store`
writes in one pipeline.

Fields of a day's hash `hotline:{env}:an:day:{YYYY-MM-DD}` are
`{channel}|{flow}|{version}|{metric}`; metrics: `contacts`, `result`, `error`,
`transfer`, `exit`, `abandoned`, `steps:<n>` / `secs:<n>` (to the outcome, capped),
`visit:<state>`, `input:<state>`, `invalid:<state>`, `drop:<state>`, `score:<n>`,
`lookup:<outcome>`, `stale`. Upstream figures sampled from the resilience metrics go
under `up|<metric>`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from hotline.analytics.facts import Fact, Outcome

__all__ = [
    "MAX_SECONDS",
    "MAX_STEPS",
    "Group",
    "Rollup",
    "Summary",
    "add_counts",
    "increments",
    "summarize",
]

MAX_STEPS = 50  # steps to an outcome are kept exactly up to this, beyond it as 50
MAX_SECONDS = 3600  # seconds likewise (one hour: a call's session lifetime)
NO_FLOW = "-"  # a contact that reached no flow (an entry nobody claims)


@dataclass(frozen=True, slots=True)
class Group:
    """The row a session counts in."""

    day: str
    channel: str
    flow: str
    version: str

    @property
    def prefix(self) -> str:
        return f"{self.channel}|{self.flow}|{self.version}"


@dataclass(slots=True)
class Summary:
    """One settled session."""

    group: Group
    subscriber: str
    outcome: Outcome = ""
    steps: int = 0
    seconds: int = 0
    visits: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    left_at: str = ""
    score: int = 0
    lookups: dict[str, int] = field(default_factory=dict)
    stale: int = 0


def summarize(facts: list[Fact], zone: ZoneInfo) -> Summary | None:
    """The session of these facts; None when its start was never seen (its first turns
    were counted with an earlier settle, or lost)."""
    facts = sorted(facts, key=lambda f: f.ts)
    first = next((i for i, f in enumerate(facts) if f.started), None)
    if first is None:
        return None
    facts = facts[first:]
    head = facts[0]
    flow = next((f for f in facts if f.flow), None)
    day = dt.datetime.fromtimestamp(head.ts, zone).date().isoformat()
    group = Group(
        day,
        head.channel,
        flow.flow if flow else NO_FLOW,
        flow.version if flow else NO_FLOW,
    )
    summary = Summary(group, head.subscriber)
    before = ""
    for step, fact in enumerate(facts, start=1):
        if before and fact.kind == "i":
            _add(summary.inputs, before)
        for state in fact.invalid:
            _add(summary.invalid, state)
        if fact.state != before and not fact.state.startswith("_"):
            _add(summary.visits, fact.state)
        for outcome in fact.lookups:
            _add(summary.lookups, outcome)
        summary.stale += fact.stale
        if fact.score:
            summary.score = fact.score
        if fact.outcome and not summary.outcome:
            summary.outcome = fact.outcome
            summary.steps = min(step, MAX_STEPS)
            summary.seconds = min(round(fact.ts - head.ts), MAX_SECONDS)
            if fact.outcome == "exit":
                summary.left_at = before  # where the subscriber chose to leave
        if not fact.state.startswith("_"):
            before = fact.state
    if not summary.outcome:
        summary.left_at = before
    return summary


def increments(summary: Summary) -> dict[str, int]:
    """The hash-field increments of one session (fields as the module doc says)."""
    p = summary.group.prefix
    found: dict[str, int] = {f"{p}|contacts": 1, f"{p}|{summary.outcome or 'abandoned'}": 1}
    if summary.outcome == "result":
        found[f"{p}|steps:{summary.steps}"] = 1
        found[f"{p}|secs:{summary.seconds}"] = 1
    if summary.left_at and summary.outcome in ("", "exit"):
        found[f"{p}|drop:{summary.left_at}"] = 1
    for metric, counts in (
        ("visit", summary.visits),
        ("input", summary.inputs),
        ("invalid", summary.invalid),
        ("lookup", summary.lookups),
    ):
        for name, n in counts.items():
            found[f"{p}|{metric}:{name}"] = n
    if summary.stale:
        found[f"{p}|stale"] = summary.stale
    if summary.score:
        found[f"{p}|score:{summary.score}"] = 1
    return found


def _add(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def add_counts(into: dict[str, int], more: dict[str, int]) -> None:
    """Add one table of counts into another."""
    for key, n in more.items():
        into[key] = into.get(key, 0) + n


class Rollup:
    """Many settled sessions' figures, added up before they are written: the day's
    counter increments, and the subscribers each row, funnel state and survey describe
    (keyed `("subs" | "rated", day, row)`; pseudonyms, for distinct counts only)."""

    __slots__ = ("distinct", "fields", "sessions")

    def __init__(self) -> None:
        self.fields: dict[str, dict[str, int]] = {}
        self.distinct: dict[tuple[str, str, str], set[str]] = {}
        self.sessions = 0

    def __bool__(self) -> bool:
        return self.sessions > 0

    def add(self, summary: Summary) -> None:
        group = summary.group
        day, row, subscriber = group.day, group.prefix, summary.subscriber
        add_counts(self.fields.setdefault(day, {}), increments(summary))
        distinct = self.distinct
        distinct.setdefault(("subs", day, row), set()).add(subscriber)
        for state in summary.visits:
            distinct.setdefault(("subs", day, f"{row}|{state}"), set()).add(subscriber)
        if summary.score:
            distinct.setdefault(("rated", day, row), set()).add(subscriber)
        self.sessions += 1
