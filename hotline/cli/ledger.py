"""`hotline ledger set|show|list`: look after the embedded SQLite ledger (DESIGN.md §4);
`offers|offer|withdraw|plan|password|orders` are the plans store's (`ledger_plans`).

`--main 12.50` is read as a Decimal and stored as integer fen, never through a float;
`-3.20` means the subscriber owes money. A bad value exits 2 with one line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hotline.balance.ledger import (
    LOCAL_TZ,
    LedgerBucket,
    LedgerRecord,
    LedgerStore,
    open_ledger,
)
from hotline.balance.msisdn import canonical_msisdn
from hotline.base.errors import ConfigError
from hotline.cli import settings_from_args

__all__ = ["parse_amount", "register"]

_AMOUNT = re.compile(r"^-?[0-9]{1,9}(\.[0-9]{1,2})?$")
MB = 1024**2
MAX_MB = 10**9
MAX_MINUTES = 10**8
MAX_SMS = 10**9


def parse_amount(text: str) -> int:
    """`12.50` → 1250 fen; `-3.2` → -320. At most two decimals, |amount| < 10^9 元."""
    cleaned = text.strip()
    if not _AMOUNT.match(cleaned):
        raise ConfigError(f"--main: expected an amount in 元 like 12.50 or -3.20, got {text!r}")
    return int(Decimal(cleaned) * 100)


def _count(text: str, option: str, maximum: int) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > maximum:  # isdigit admits ²
        raise ConfigError(f"{option}: expected a whole number 0..{maximum}, got {text!r}")
    return int(text)


def _expiry(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: expected a date YYYY-MM-DD, got {text!r}") from exc
    return dt.datetime.combine(day, dt.time(23, 59, 59), LOCAL_TZ).astimezone(dt.UTC)


def _msisdn(text: str) -> str:
    try:
        return canonical_msisdn(text)
    except ValueError as exc:
        raise ConfigError(f"MSISDN: {exc}") from exc


def _store(args: argparse.Namespace) -> LedgerStore:
    settings = settings_from_args(args)
    return open_ledger(settings.balance.ledger_path, seed_demo=settings.balance.ledger_seed_demo)


def _yuan(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    whole, fen = divmod(abs(minor), 100)
    return f"{sign}{whole}.{fen:02d}"


def _bucket_text(bucket: LedgerBucket) -> str:
    if bucket.usage_type == "data":
        megabytes = Decimal(bucket.remaining) / MB
        amount = f"{megabytes / 1024:f} GB" if megabytes % 1024 == 0 else f"{megabytes:f} MB"
    elif bucket.usage_type == "voice":
        amount = f"{bucket.remaining // 60} min"
    else:
        amount = f"{bucket.remaining} SMS"
    until = (
        ""
        if bucket.valid_until is None
        else f" (until {bucket.valid_until.astimezone(LOCAL_TZ).date().isoformat()})"
    )
    return amount + until


def _table(records: list[LedgerRecord]) -> Table:
    table = Table("MSISDN", "status", "main (元)", "data", "voice", "SMS")
    for rec in records:
        cells = {b.usage_type: _bucket_text(b) for b in rec.buckets}
        table.add_row(
            rec.msisdn,
            rec.status,
            _yuan(rec.main_minor),
            cells.get("data", "-"),
            cells.get("voice", "-"),
            cells.get("sms", "-"),
        )
    return table


def cmd_set(args: argparse.Namespace) -> int:
    msisdn = _msisdn(args.msisdn)
    main = None if args.main is None else parse_amount(args.main)
    updates: dict[str, int] = {}
    if args.data_mb is not None:
        updates["data"] = _count(args.data_mb, "--data-mb", MAX_MB) * MB
    if args.voice_min is not None:
        updates["voice"] = _count(args.voice_min, "--voice-min", MAX_MINUTES) * 60
    if args.sms is not None:
        updates["sms"] = _count(args.sms, "--sms", MAX_SMS)
    expiries = {
        "data": _expiry(args.data_expiry, "--data-expiry"),
        "voice": _expiry(args.voice_expiry, "--voice-expiry"),
        "sms": _expiry(args.sms_expiry, "--sms-expiry"),
    }
    store = _store(args)
    try:
        current = store.get(msisdn)
        if current is None and main is None:
            raise ConfigError("--main: required for a new subscriber")
        buckets = {b.usage_type: b for b in (current.buckets if current else ())}
        for kind in ("data", "voice", "sms"):
            if kind in updates:
                buckets[kind] = LedgerBucket(
                    kind,
                    updates[kind],  # type: ignore[arg-type]
                    expiries[kind] or (buckets[kind].valid_until if kind in buckets else None),
                )
            elif expiries[kind] is not None:
                if kind not in buckets:
                    raise ConfigError(
                        f"--{kind}-expiry: the subscriber has no {kind} package; give its size too"
                    )
                buckets[kind] = LedgerBucket(
                    kind,
                    buckets[kind].remaining,  # type: ignore[arg-type]
                    expiries[kind],
                )
        record = LedgerRecord(
            msisdn=msisdn,
            status=args.status or (current.status if current else "active"),
            main_minor=main if main is not None else current.main_minor,  # type: ignore[union-attr]
            buckets=tuple(buckets[k] for k in ("data", "voice", "sms") if k in buckets),
        )
        store.put(record)
        Console().print(_table([record]))
    finally:
        store.close()
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    msisdn = _msisdn(args.msisdn)
    store = _store(args)
    try:
        record = store.get(msisdn)
    finally:
        store.close()
    if record is None:
        print(f"hotline: ledger: no subscriber {msisdn}", file=sys.stderr)
        return 1
    Console().print(_table([record]))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        records = store.all()
    finally:
        store.close()
    Console().print(_table(records))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ledger", help="the embedded SQLite balance ledger")
    parser.add_argument(
        "--config", type=Path, default=None, help="settings file (default hotline.yaml if present)"
    )
    sub = parser.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")

    put = sub.add_parser("set", help="create or change a subscriber")
    put.add_argument("msisdn", metavar="MSISDN")
    put.add_argument("--main", metavar="YUAN", help="main balance in 元, e.g. 12.50 or -3.20")
    put.add_argument("--data-mb", metavar="N", help="data package remaining, MB (1 GB = 1024 MB)")
    put.add_argument("--voice-min", metavar="N", help="voice package remaining, minutes")
    put.add_argument("--sms", metavar="N", help="SMS package remaining, messages")
    put.add_argument("--data-expiry", metavar="YYYY-MM-DD")
    put.add_argument("--voice-expiry", metavar="YYYY-MM-DD")
    put.add_argument("--sms-expiry", metavar="YYYY-MM-DD")
    put.add_argument("--status", choices=("active", "suspended"))
    put.set_defaults(func=cmd_set)

    show = sub.add_parser("show", help="one subscriber")
    show.add_argument("msisdn", metavar="MSISDN")
    show.set_defaults(func=cmd_show)

    listing = sub.add_parser("list", help="every subscriber")
    listing.set_defaults(func=cmd_list)

    from hotline.cli import ledger_plans  # plans, offers, orders: hotline.cli.ledger_plans

    ledger_plans.register(sub)
