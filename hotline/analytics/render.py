"""The report as rich terminal tables (`hotline report` without --csv/--json)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hotline.analytics.report import Report, Row

__all__ = ["print_report", "short_version"]


def short_version(version: str) -> str:
    return version[:10]


def _n(value: float | int | None) -> str:
    if value is None:
        return "·"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return str(int(value))


def _pct(value: float | None) -> str:
    return "·" if value is None else f"{value * 100:.1f}%"


def _sessions(title: str, rows: list[Row]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("day", "channel", "flow", "version", "contacts", "result", "error"):
        table.add_column(
            name, justify="right" if name in ("contacts", "result", "error") else "left"
        )
    for name in (
        "transfer",
        "abandoned+exit",
        "self-service",
        "deflection",
        "steps p50/p95",
        "secs p50/p95",
    ):
        table.add_column(name, justify="right")
    for r in rows:
        if r.suppressed:
            table.add_row(
                r.day, r.channel, r.flow, short_version(r.version), f"[dim]{r.suppressed}[/dim]"
            )
            continue
        table.add_row(
            r.day,
            r.channel,
            r.flow,
            short_version(r.version),
            _n(r.contacts),
            _n(r.result),
            _n(r.error),
            _n(r.transfer),
            _n((r.abandoned or 0) + (r.exit or 0)),
            _pct(r.self_service_rate),
            _pct(r.deflection),
            f"{_n(r.steps_median)}/{_n(r.steps_p95)}",
            f"{_n(r.seconds_median)}/{_n(r.seconds_p95)}",
        )
    return table


def print_report(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    console.print(
        f"[bold]hotline report[/bold] {report.first} … {report.last}  "
        f"(groups under {report.min_group} subscribers suppressed; "
        f"{report.open_sessions} sessions still open)"
    )
    console.print(_sessions("Sessions per day", report.rows))
    console.print(_sessions("Whole range, per flow version", report.totals))
    funnel = Table(title="Funnels", title_justify="left")
    for name in ("channel", "flow", "version", "state", "visits", "inputs", "invalid", "drop-offs"):
        funnel.add_column(
            name, justify="right" if name in ("visits", "inputs", "drop-offs") else "left"
        )
    for f in report.funnels:
        if f.suppressed:
            funnel.add_row(
                f.channel, f.flow, short_version(f.version), f.state, f"[dim]{f.suppressed}[/dim]"
            )
            continue
        funnel.add_row(
            f.channel,
            f.flow,
            short_version(f.version),
            f.state,
            _n(f.visits),
            _n(f.inputs),
            f"{_n(f.invalid)} ({_pct(f.invalid_rate)})",
            _n(f.dropoffs),
        )
    console.print(funnel)
    if report.surveys:
        survey = Table(title="Satisfaction (1-5)", title_justify="left")
        for name in ("flow", "version", "answers", "1", "2", "3", "4", "5", "mean"):
            survey.add_column(name)
        for s in report.surveys:
            if s.suppressed or s.scores is None:
                survey.add_row(s.flow, short_version(s.version), f"[dim]{s.suppressed}[/dim]")
                continue
            survey.add_row(
                s.flow,
                short_version(s.version),
                _n(s.answers),
                *(str(s.scores.get(str(k), 0)) for k in range(1, 6)),
                _n(s.mean),
            )
        console.print(survey)
    upstream = Table(title="Upstream (balance)", title_justify="left")
    for name in ("day", "lookups", "errors", "cache hit rate", "stale shown", "breaker open s"):
        upstream.add_column(name, justify="right")
    for u in report.upstream:
        if not (u.lookups or u.cache_miss or u.breaker_open_seconds):
            continue
        upstream.add_row(
            u.day,
            str(u.lookups),
            str(u.lookup_errors),
            _pct(u.cache_hit_rate),
            str(u.stale_shown),
            _n(u.breaker_open_seconds),
        )
    console.print(upstream)
