"""`hotline sms purge`: delete outbox messages finished (delivered or failed) long ago.

Added to `hotline` through the `hotline.commands` entry point `sms`. The sender also
purges by itself once an hour (`sms.outbox_keep_days`); this is for a worker without a
sender, or to purge now with another age.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `hotline sms purge`."""
    sms = sub.add_parser("sms", help="the SMS channel's outbox")
    sms_sub = sms.add_subparsers(dest="sms_command", required=True, metavar="ACTION")
    purge = sms_sub.add_parser(
        "purge", help="delete delivered and failed messages older than --days"
    )
    purge.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    purge.add_argument(
        "--days",
        type=float,
        help="finished longer ago than this (default: sms.outbox_keep_days)",
    )
    purge.set_defaults(func=run_purge)


def run_purge(args: argparse.Namespace) -> int:
    from hotline.cli import settings_from_args
    from hotline.store.outbox import Outbox

    settings = settings_from_args(args)
    sms = settings.sms
    days = sms.outbox_keep_days if args.days is None else args.days
    if days <= 0:
        print("nothing purged: keeping messages forever (sms.outbox_keep_days is 0)")
        return 0

    async def purge() -> int:
        outbox = Outbox(sms.outbox_url, path=sms.outbox_path)
        try:
            return await outbox.purge(days * 86400)
        finally:
            await outbox.close()

    gone = asyncio.run(purge())
    print(f"purged {gone} message(s) finished more than {days:g} day(s) ago")
    return 0
