"""Rolling a settled session up into per-day counters (pure; no I/O here).

A session's facts (one per turn, in any order) become one `Summary`: its group (the
local day it started, channel, flow, flow version), its outcome, the steps and seconds
to that outcome, the states it visited, the inputs given and refused at each, where it
was left if it was abandoned, its survey score, and the balance lookups it made. The
summary turns into hash-field increments (`increments`) and distinct-subscriber
additions (`distinct`) that `hotline.analytics.store` writes in one pipeline.

Fields of a day's hash `hotline:{env}:an:day:{YYYY-MM-DD}` are
`{channel}|{flow}|{version}|{metric}`; metrics: `contacts`, `result`, `error`,
`transfer`, `exit`, `abandoned`, `steps:<n>` / `secs:<n>` (to the outcome, capped),
`visit:<state>`, `input:<state>`, `invalid:<state>`, `drop:<state>`, `score:<n>`,
`lookup:<outcome>`, `stale`. Upstream figures sampled from the resilience metrics go
under `up|<metric>`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from hotline.analytics.facts import Fact, Outcome

__all__ = ["MAX_SECONDS", "MAX_STEPS", "Group", "Summary", "increments", "summarize"]

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
    visits: Counter[str] = field(default_factory=Counter)
    inputs: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    left_at: str = ""
    score: int = 0
    lookups: Counter[str] = field(default_factory=Counter)
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
            summary.inputs[before] += 1
        for state in fact.invalid:
            summary.invalid[state] += 1
        if fact.state != before and not fact.state.startswith("_"):
            summary.visits[fact.state] += 1
        for outcome in fact.lookups:
            summary.lookups[outcome] += 1
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


def increments(summary: Summary) -> Counter[str]:
    """The hash-field increments of one session (fields as the module doc says)."""
    p = summary.group.prefix
    found: Counter[str] = Counter({f"{p}|contacts": 1})
    outcome = summary.outcome or "abandoned"
    found[f"{p}|{outcome}"] += 1
    if summary.outcome == "result":
        found[f"{p}|steps:{summary.steps}"] += 1
        found[f"{p}|secs:{summary.seconds}"] += 1
    if summary.left_at and summary.outcome in ("", "exit"):
        found[f"{p}|drop:{summary.left_at}"] += 1
    for state, n in summary.visits.items():
        found[f"{p}|visit:{state}"] += n
    for state, n in summary.inputs.items():
        found[f"{p}|input:{state}"] += n
    for state, n in summary.invalid.items():
        found[f"{p}|invalid:{state}"] += n
    for outcome_name, n in summary.lookups.items():
        found[f"{p}|lookup:{outcome_name}"] += n
    if summary.stale:
        found[f"{p}|stale"] += summary.stale
    if summary.score:
        found[f"{p}|score:{summary.score}"] += 1
    return found
