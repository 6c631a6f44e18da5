"""`hotline ledger offers|offer|withdraw|plan|password|orders`: the embedded plans store.

The offers, subscriptions and service passwords of the embedded plans provider, and
the order journal of either provider (`plans.store_url` / `plans.store_path`). Prices
are read as Decimal 元 into integer fen; a service password is read from standard input
(or a prompt), never from the command line, and stored as a scrypt digest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import re
import sys
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from hotline.balance.ledger import LOCAL_TZ
from hotline.balance.msisdn import canonical_msisdn
from hotline.base.errors import ConfigError
from hotline.cli import settings_from_args
from hotline.plans.embedded import PlanStore
from hotline.plans.journal import Journal
from hotline.plans.model import Allowance, Offer
from hotline.plans.open import open_plan_store

__all__ = ["register"]

_PRICE = re.compile(r"^[0-9]{1,7}(\.[0-9]{1,2})?$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_CODE = re.compile(r"^[0-9A-Za-z]{1,16}$")
_PASSWORD = re.compile(r"^[0-9]{6}$")
MB = 1024**2


def _price(text: str) -> int:
    if not _PRICE.match(text.strip()):
        raise ConfigError(f"--price: expected an amount in 元 like 10 or 38.50, got {text!r}")
    return int(Decimal(text.strip()) * 100)


def _whole(text: str | None, option: str) -> int:
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit()) or int(text) > 10**9:
        raise ConfigError(f"{option}: expected a whole number, got {text!r}")
    return int(text)


def _msisdn(text: str) -> str:
    try:
        return canonical_msisdn(text)
    except ValueError as exc:
        raise ConfigError(f"MSISDN: {exc}") from exc


def _store(args: argparse.Namespace) -> PlanStore:
    return open_plan_store(settings_from_args(args))


def _yuan(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def cmd_offers(args: argparse.Namespace) -> int:
    store = _store(args)
    table = Table("id", "code", "name", "kind", "price (元)", "effect", "changes", "active")
    for offer, active in store.offers(active_only=False):
        table.add_row(
            offer.id,
            offer.code,
            offer.name,
            offer.kind,
            _yuan(offer.price_minor),
            offer.effect,
            offer.change,
            "yes" if active else "no",
        )
    Console().print(table)
    return 0


def cmd_offer(args: argparse.Namespace) -> int:
    if not _ID.match(args.id):
        raise ConfigError(f"ID: lowercase letters, digits and '-', got {args.id!r}")
    if not _CODE.match(args.code):
        raise ConfigError(
            f"--code: letters and digits (what an SMS names it by), got {args.code!r}"
        )
    name = args.name.strip()
    if not 0 < len(name) <= 64:
        raise ConfigError("--name: 1 to 64 characters")
    offer = Offer(
        id=args.id,
        code=args.code,
        name=name,
        kind=args.kind,
        price_minor=_price(args.price),
        effect=args.effect or ("next_month" if args.kind == "plan" else "now"),
        allowance=Allowance(
            _whole(args.data_mb, "--data-mb") * MB,
            _whole(args.voice_min, "--voice-min") * 60,
            _whole(args.sms, "--sms"),
        ),
        change=(args.change or "")[:64],
        requires_password=args.password_required,
    )
    store = _store(args)
    store.put_offer(offer, sort=_whole(args.sort, "--sort"))
    print(f"offer {offer.id}: {offer.name}, {_yuan(offer.price_minor)}元, {offer.effect}")
    return 0


def cmd_withdraw(args: argparse.Namespace) -> int:
    if not _store(args).withdraw(args.id):
        print(f"hotline: ledger: no offer {args.id}", file=sys.stderr)
        return 1
    print(f"offer {args.id}: withdrawn (orders placed stand)")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    msisdn = _msisdn(args.msisdn)
    store = _store(args)
    if args.set is not None:
        if store.offer(args.set) is None:
            raise ConfigError(f"--set: no active offer {args.set!r}")
        store.set_plan(msisdn, args.set, dt.datetime.now(LOCAL_TZ).date())
    rows: list[dict[str, Any]] = store.holdings(msisdn)
    if not rows:
        print(f"hotline: ledger: no plan for {msisdn}", file=sys.stderr)
        return 1
    table = Table("offer", "kind", "from", "until", "order")
    for row in rows:
        table.add_row(
            row["offer_id"],
            row["kind"],
            row["starts_on"],
            row["ends_on"] or "-",
            row["order_id"] or "-",
        )
    Console().print(table)
    return 0


def cmd_password(args: argparse.Namespace) -> int:
    msisdn = _msisdn(args.msisdn)
    if sys.stdin.isatty():
        password = getpass.getpass("service password (6 digits): ")
    else:
        password = sys.stdin.readline().strip()
    if not _PASSWORD.match(password):
        raise ConfigError("service password: 6 digits")
    _store(args).set_password(msisdn, password)
    print(f"service password of {msisdn[:3]}****{msisdn[-4:]}: set")
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    store = _store(args)
    msisdn = None if args.msisdn is None else _msisdn(args.msisdn)
    limit = _whole(args.limit, "--limit") or 50
    table = Table("order", "MSISDN", "offer", "price (元)", "state", "reason", "effective", "SMS")
    for row in Journal(store.engine).recent(msisdn, limit):
        table.add_row(
            row.id,
            f"{row.msisdn[:3]}****{row.msisdn[-4:]}",
            row.offer_name,
            _yuan(row.price_minor),
            row.state,
            row.reason or "-",
            row.effective_on.isoformat() if row.effective_on else "-",
            "sent" if row.notified else "-",
        )
    Console().print(table)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the plans subcommands to `hotline ledger`."""
    sub.add_parser("offers", help="plans and bundles (embedded plans provider)").set_defaults(
        func=cmd_offers
    )
    offer = sub.add_parser("offer", help="create or change an offer")
    offer.add_argument("id", metavar="ID")
    offer.add_argument("--code", required=True, help="what an SMS names it by (BL <code>)")
    offer.add_argument("--name", required=True)
    offer.add_argument("--kind", choices=("plan", "addon"), required=True)
    offer.add_argument("--price", required=True, metavar="YUAN", help="monthly fee or price")
    offer.add_argument("--effect", choices=("now", "next_month"))
    offer.add_argument("--data-mb", metavar="N")
    offer.add_argument("--voice-min", metavar="N")
    offer.add_argument("--sms", metavar="N")
    offer.add_argument("--change", help="what it changes, in a few words")
    offer.add_argument("--sort", metavar="N", help="display order")
    offer.add_argument("--password-required", action="store_true")
    offer.set_defaults(func=cmd_offer)
    withdraw = sub.add_parser("withdraw", help="stop offering an offer")
    withdraw.add_argument("id", metavar="ID")
    withdraw.set_defaults(func=cmd_withdraw)
    plan = sub.add_parser("plan", help="a subscriber's plan and bundles")
    plan.add_argument("msisdn", metavar="MSISDN")
    plan.add_argument("--set", metavar="OFFER", help="put them on this plan from today")
    plan.set_defaults(func=cmd_plan)
    password = sub.add_parser("password", help="set a service password (read from stdin)")
    password.add_argument("msisdn", metavar="MSISDN")
    password.set_defaults(func=cmd_password)
    orders = sub.add_parser("orders", help="the order journal (either provider)")
    orders.add_argument("msisdn", metavar="MSISDN", nargs="?")
    orders.add_argument("--limit", metavar="N")
    orders.set_defaults(func=cmd_orders)
