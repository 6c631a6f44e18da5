"""`hotline report`: the analytics figures in the terminal, or as CSV / JSON.

    hotline report [--since 7d | --since 2026-12-01] [--until 2026-12-06] [--csv | --json]
                   [--part rows|totals|funnels|surveys|upstream] [--settle] [--config FILE]

Days are local days (`timezone`). The workers settle sessions as they become due;
`--settle` does it here first, for when no worker runs (those sessions are then missing
from the Prometheus series, which the workers count).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
import json
import re
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["parse_since", "register", "run_report"]

PARTS = ("rows", "totals", "funnels", "surveys", "upstream")
_SINCE = re.compile(r"^([0-9]{1,4})d$")


def parse_since(text: str, today: dt.date) -> dt.date:
    """`7d` (this day and the 6 before it) or an ISO date; raises `ValueError`."""
    match = _SINCE.match(text.strip())
    if match:
        n = int(match.group(1))
        if n < 1:
            raise ValueError("--since takes at least 1d")
        return today - dt.timedelta(days=n - 1)
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since: expected like 7d or 2026-12-01, got {text!r}") from None


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `hotline report` (the `hotline.commands` entry point)."""
    report = sub.add_parser(
        "report", help="self-service rate, funnels, deflection, satisfaction (docs/analytics.md)"
    )
    report.add_argument("--since", default="7d", help="first day: 7d (default) or YYYY-MM-DD")
    report.add_argument("--until", help="last day, YYYY-MM-DD (default: today)")
    fmt = report.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV of one part (see --part)")
    fmt.add_argument("--json", action="store_true", help="everything as JSON")
    report.add_argument("--part", choices=PARTS, default="rows", help="what --csv writes")
    report.add_argument(
        "--settle", action="store_true", help="count the sessions that are due first"
    )
    report.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from hotline.cli import settings_from_args

    settings = settings_from_args(args)
    if not settings.redis_url:
        print("hotline report: analytics live in Redis; set redis_url", file=sys.stderr)
        return 2
    today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    try:
        first = parse_since(args.since, today)
        last = dt.date.fromisoformat(args.until) if args.until else today
    except ValueError as exc:
        print(f"hotline report: {exc}", file=sys.stderr)
        return 2
    if last < first or (last - first).days > 3660:  # ten years of days at most
        print("hotline report: --until must be on or after --since", file=sys.stderr)
        return 2
    from redis.exceptions import RedisError

    from hotline.analytics.report import Report

    try:
        report: Report = asyncio.run(_gather(settings, first, last, settle=args.settle))
    except (RedisError, OSError) as exc:
        # The class only: a message can quote the URL, and a URL can carry a password.
        print(f"hotline report: cannot read Redis ({type(exc).__name__})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    elif args.csv:
        sys.stdout.write(to_csv(report, args.part))
    else:
        from hotline.analytics.render import print_report

        print_report(report)
    return 0


async def _gather(settings: Any, first: dt.date, last: dt.date, *, settle: bool) -> Any:
    from hotline.analytics.recorder import Recorder
    from hotline.analytics.report import build_report
    from hotline.analytics.store import AnalyticsStore
    from hotline.base.privacy import Pseudonymizer
    from hotline.flow.registry import FlowRegistry
    from hotline.store.redisurl import open_redis

    redis = open_redis(settings.redis_url)
    try:
        store = AnalyticsStore(redis, settings.env, settings.analytics.retention_days)
        if settle:
            recorder = Recorder(
                settings=settings,
                store=store,
                flows=FlowRegistry([]),  # end states were classified when turns were written
                pseudonym=Pseudonymizer(settings.pseudonym_secret.get_secret_value()),
            )
            await recorder.settle()
        return await build_report(store, first, last, settings.analytics.min_group)
    finally:
        await redis.aclose()


def to_csv(report: Any, part: str) -> str:
    """One part of the report as CSV (a header line, one line per row)."""
    rows: list[dict[str, Any]] = [dict(r) for r in report.to_dict()[part]]
    out = io.StringIO()
    if not rows:
        return ""
    if part == "surveys":
        for row in rows:
            scores = row.pop("scores") or {}
            for score in range(1, 10):
                if str(score) in scores or score <= 5:
                    row[f"score_{score}"] = scores.get(str(score))
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
