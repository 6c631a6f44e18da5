"""The figures an operator asks for, read from the rollups (docs/analytics.md).

`build_report(store, first, last, min_group)` reads the days' counters and distinct
counts and returns a `Report`:

- `rows`: per day × channel × flow × flow version — contacts, results, errors,
  transfers, exits, abandoned; self-service rate (results / contacts), transfer share
  and deflection (1 − transfer share); median and p95 steps and seconds to the result;
  balance lookups and stale answers shown;
- `totals`: the same over the whole range, per channel × flow × version (the rows a
  flow author compares across versions);
- `funnels`: per channel × flow × version × state — visits, inputs, invalid-input rate,
  drop-offs;
- `surveys`: per flow × version — the score distribution and mean;
- `upstream`: per day — cache answers by kind, hit rate, breaker open seconds.

Privacy: a row, funnel state or survey that describes fewer than `min_group` distinct
subscribers is suppressed: its figures are None and `suppressed` says why. No figure
holds a phone number, a balance or anything typed (the rollups never had one).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from hotline.analytics.store import AnalyticsStore

__all__ = [
    "SUPPRESSED",
    "FunnelRow",
    "Report",
    "Row",
    "SurveyRow",
    "UpstreamRow",
    "build_report",
    "quantile",
]

OUTCOMES = ("result", "error", "transfer", "exit", "abandoned")


def SUPPRESSED(n: int) -> str:  # reads as the constant sentence it is
    return f"fewer than {n} subscribers: suppressed"


@dataclass(slots=True)
class Row:
    """One group's session figures (a day's, or the range's when `day` is `all`)."""

    day: str
    channel: str
    flow: str
    version: str
    suppressed: str = ""
    contacts: int | None = None
    result: int | None = None
    error: int | None = None
    transfer: int | None = None
    exit: int | None = None
    abandoned: int | None = None
    self_service_rate: float | None = None
    transfer_share: float | None = None
    deflection: float | None = None
    steps_median: float | None = None
    steps_p95: float | None = None
    seconds_median: float | None = None
    seconds_p95: float | None = None
    lookups: int | None = None
    stale_shown: int | None = None


@dataclass(slots=True)
class FunnelRow:
    """One state of a flow version's funnel over the range."""

    channel: str
    flow: str
    version: str
    state: str
    suppressed: str = ""
    visits: int | None = None
    inputs: int | None = None
    invalid: int | None = None
    invalid_rate: float | None = None
    dropoffs: int | None = None


@dataclass(slots=True)
class SurveyRow:
    """A flow version's satisfaction answers over the range."""

    flow: str
    version: str
    suppressed: str = ""
    answers: int | None = None
    scores: dict[str, int] | None = None
    mean: float | None = None


@dataclass(slots=True)
class UpstreamRow:
    """A day's upstream health (no subscriber in it: never suppressed)."""

    day: str
    lookups: int = 0
    lookup_errors: int = 0
    cache_fresh: int = 0
    cache_stale: int = 0
    cache_negative: int = 0
    cache_miss: int = 0
    cache_hit_rate: float | None = None
    stale_shown: int = 0
    breaker_open_seconds: float = 0.0


@dataclass(slots=True)
class Report:
    first: str
    last: str
    min_group: int
    open_sessions: int
    rows: list[Row] = field(default_factory=list)
    totals: list[Row] = field(default_factory=list)
    funnels: list[FunnelRow] = field(default_factory=list)
    surveys: list[SurveyRow] = field(default_factory=list)
    upstream: list[UpstreamRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantile(counts: dict[int, float], q: float) -> float | None:
    """The nearest-rank `q` quantile of a value → count table (None when empty)."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0.0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return float(value)
    return float(max(counts))


def _days(first: dt.date, last: dt.date) -> list[str]:
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _fill(row: Row, m: dict[str, float]) -> None:
    """Set a row's figures from its metric → count table."""
    contacts = int(m.get("contacts", 0))
    row.contacts = contacts
    row.result, row.error = int(m.get("result", 0)), int(m.get("error", 0))
    row.transfer, row.exit = int(m.get("transfer", 0)), int(m.get("exit", 0))
    row.abandoned = int(m.get("abandoned", 0))
    row.self_service_rate = _ratio(row.result, contacts)
    row.transfer_share = _ratio(row.transfer, contacts)
    row.deflection = None if row.transfer_share is None else round(1 - row.transfer_share, 4)
    steps = {int(k[6:]): v for k, v in m.items() if k.startswith("steps:")}
    secs = {int(k[5:]): v for k, v in m.items() if k.startswith("secs:")}
    row.steps_median, row.steps_p95 = quantile(steps, 0.5), quantile(steps, 0.95)
    row.seconds_median, row.seconds_p95 = quantile(secs, 0.5), quantile(secs, 0.95)
    row.lookups = int(sum(v for k, v in m.items() if k.startswith("lookup:")))
    row.stale_shown = int(m.get("stale", 0))


async def build_report(
    store: AnalyticsStore, first: dt.date, last: dt.date, min_group: int = 5
) -> Report:
    """Every figure for the local days `first`..`last` (inclusive)."""
    days = _days(first, last)
    counters = await store.days(days)
    # (day, row prefix) → metric → count; the upstream figures per day apart.
    groups: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    upstream: dict[str, dict[str, float]] = {}
    for day, fields in counters.items():
        for name, value in fields.items():
            if name.startswith("up|"):
                upstream.setdefault(day, {})[name[3:]] = value
                continue
            channel, flow, version, metric = name.split("|", 3)
            groups[(day, f"{channel}|{flow}|{version}")][metric] = value

    report = Report(
        days[0], days[-1], min_group, await store.open_sessions(), upstream=_upstream(days)
    )
    # Distinct subscribers per day row, per range row, per funnel state, per survey.
    by_prefix: dict[str, list[str]] = defaultdict(list)
    for day, prefix in groups:
        by_prefix[prefix].append(day)
    day_keys = [[store.subs_key(day, prefix)] for day, prefix in groups]
    range_keys = [[store.subs_key(d, p) for d in ds] for p, ds in by_prefix.items()]
    states: list[tuple[str, str]] = sorted(
        {
            (prefix, metric.split(":", 1)[1])
            for (_, prefix), m in groups.items()
            for metric in m
            if metric.startswith(("visit:", "drop:", "invalid:", "input:"))
        }
    )
    state_keys = [[store.subs_key(d, f"{p}|{s}") for d in by_prefix[p]] for p, s in states]
    flows_versions = sorted({p.split("|", 1)[1] for p in by_prefix})
    rated_keys = [
        [store.rated_key(d, p) for p, ds in by_prefix.items() if p.endswith(f"|{fv}") for d in ds]
        for fv in flows_versions
    ]
    counts = await store.distinct(day_keys + range_keys + state_keys + rated_keys)
    day_n = counts[: len(day_keys)]
    range_n = counts[len(day_keys) : len(day_keys) + len(range_keys)]
    state_n = counts[len(day_keys) + len(range_keys) : len(counts) - len(rated_keys)]
    rated_n = counts[len(counts) - len(rated_keys) :]

    for ((day, prefix), metrics), n in zip(groups.items(), day_n, strict=True):
        row = Row(day, *_split(prefix))
        if n < min_group:
            row.suppressed = SUPPRESSED(min_group)
        else:
            _fill(row, metrics)
        report.rows.append(row)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (_, prefix), metrics in groups.items():
        for metric, value in metrics.items():
            totals[prefix][metric] += value
    for (prefix, _), n in zip(by_prefix.items(), range_n, strict=True):
        row = Row("all", *_split(prefix))
        if n < min_group:
            row.suppressed = SUPPRESSED(min_group)
        else:
            _fill(row, totals[prefix])
        report.totals.append(row)
    for (prefix, state), n in zip(states, state_n, strict=True):
        funnel = FunnelRow(*_split(prefix), state)
        m = totals[prefix]
        if n < min_group:
            funnel.suppressed = SUPPRESSED(min_group)
        else:
            funnel.visits = int(m.get(f"visit:{state}", 0))
            funnel.inputs = int(m.get(f"input:{state}", 0))
            funnel.invalid = int(m.get(f"invalid:{state}", 0))
            funnel.invalid_rate = _ratio(funnel.invalid, funnel.inputs)
            funnel.dropoffs = int(m.get(f"drop:{state}", 0))
        report.funnels.append(funnel)
    for fv, n in zip(flows_versions, rated_n, strict=True):
        flow, version = fv.split("|")
        scores: dict[str, int] = defaultdict(int)
        for prefix, m in totals.items():
            if prefix.endswith(f"|{fv}"):
                for metric, value in m.items():
                    if metric.startswith("score:"):
                        scores[metric[6:]] += int(value)
        if not scores:
            continue
        survey = SurveyRow(flow, version)
        if n < min_group:
            survey.suppressed = SUPPRESSED(min_group)
        else:
            survey.scores = dict(sorted(scores.items()))
            survey.answers = sum(scores.values())
            survey.mean = round(sum(int(k) * v for k, v in scores.items()) / survey.answers, 2)
        report.surveys.append(survey)
    _upstream_figures(report, upstream, groups)
    report.rows.sort(key=lambda r: (r.day, r.channel, r.flow, r.version))
    report.totals.sort(key=lambda r: (r.channel, r.flow, r.version))
    return report


def _split(prefix: str) -> tuple[str, str, str]:
    channel, flow, version = prefix.split("|")
    return channel, flow, version


def _upstream(days: list[str]) -> list[UpstreamRow]:
    return [UpstreamRow(day) for day in days]


def _upstream_figures(
    report: Report,
    sampled: dict[str, dict[str, float]],
    groups: dict[tuple[str, str], dict[str, float]],
) -> None:
    by_day = {row.day: row for row in report.upstream}
    for (day, _), m in groups.items():
        row = by_day[day]
        for metric, value in m.items():
            if metric.startswith("lookup:"):
                row.lookups += int(value)
                if metric != "lookup:ok":
                    row.lookup_errors += int(value)
        row.stale_shown += int(m.get("stale", 0))
    for day, m in sampled.items():
        row = by_day[day]
        for metric, value in m.items():
            if metric.startswith("balance:cache_"):
                kind = metric.removeprefix("balance:cache_")
                if kind in ("fresh", "stale", "negative", "miss"):
                    setattr(row, f"cache_{kind}", getattr(row, f"cache_{kind}") + int(value))
        row.breaker_open_seconds = round(m.get("breaker_open_seconds", 0.0), 1)
    for row in report.upstream:
        answered = row.cache_fresh + row.cache_stale + row.cache_negative
        row.cache_hit_rate = _ratio(answered, answered + row.cache_miss)
