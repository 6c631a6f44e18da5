"""`hotline billing-sim [--host] [--port] [--seed FILE]`: the reference balance API server.

Serves "balance-query v1" and TMF654 v4 from a YAML seed (default: the ledger's demo
subscribers), with the admin and fault API of `hotline.balance.sim`. It signs with
the same `balance.key_id` / `balance.secret` as the `http` provider; without them it
uses the development pair below and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from aiohttp import web

from hotline.balance.sim import create_sim_app
from hotline.base.config import DEV_BILLING_KEY_ID, DEV_BILLING_SECRET
from hotline.cli import settings_from_args

__all__ = ["DEV_KEY_ID", "DEV_SECRET", "register"]

DEV_KEY_ID = DEV_BILLING_KEY_ID
DEV_SECRET = DEV_BILLING_SECRET


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        print(f"billing-sim listening on http://{host}:{port}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def cmd_billing_sim(args: argparse.Namespace) -> int:
    from hotline.base.logs import setup_logging

    settings = settings_from_args(args)
    # The scrubbing root handler: without it aiohttp's lines (a TMF654 URL holds the
    # MSISDN) would reach stderr through logging's last-resort handler, unscrubbed.
    setup_logging(settings.json_logs, settings.log_level)
    balance = settings.balance
    key_id = balance.key_id or DEV_KEY_ID
    secret = balance.secret.get_secret_value() if balance.secret else DEV_SECRET
    if balance.secret is None:
        print(
            f"billing-sim: no balance.secret configured; using the development key {DEV_KEY_ID!r}",
            file=sys.stderr,
        )
    try:
        app = create_sim_app(
            key_id=key_id,
            secret=secret,
            seed_path=args.seed,
            seed=args.rng_seed,
            events_url=args.nats_url or settings.reminders.nats_url,
        )
    except (OSError, ValueError) as exc:
        print(f"hotline: billing-sim: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    asyncio.run(_serve(app, args.host, args.port))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "billing-sim", help="reference balance API server with fault injection (loopback)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="bind address (default 127.0.0.1; 0.0.0.0 only inside a container)",
    )
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument(
        "--nats-url",
        default=None,
        help="publish balance events to this NATS JetStream (default: reminders.nats_url)",
    )
    parser.add_argument(
        "--seed",
        type=Path,
        default=None,
        metavar="FILE",
        help="YAML subscribers (default: the ledger's demo subscribers)",
    )
    parser.add_argument("--rng-seed", type=int, default=0, help="seed of probabilistic faults")
    parser.add_argument("--config", type=Path, default=None)
    parser.set_defaults(func=cmd_billing_sim)
