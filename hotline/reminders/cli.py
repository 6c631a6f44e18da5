"""`hotline reminders …`: status, consent export, a JetStream worker, a test event.

    hotline reminders status                 counts (armed, fired, deferred, queued, sent, …)
    hotline reminders export [--pseudonymous]  the consent log as JSON lines
    hotline reminders consume                a JetStream worker (run several for more throughput)
    hotline reminders publish +86… 4.80      publish one usage event (demo, smoke test)

Registered through the `hotline.commands` entry point `reminders`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal
import sys
import time
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `hotline reminders`."""
    parser = sub.add_parser("reminders", help="top-up reminders (status, consent, worker)")
    actions = parser.add_subparsers(dest="reminders_command", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="counts: armed, fired, deferred, sent, …")
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(func=run_status)
    export = actions.add_parser("export", help="the consent log (opt-in/out, time, channel)")
    export.add_argument("--pseudonymous", action="store_true", help="pseudonyms, no numbers")
    export.set_defaults(func=run_export)
    consume = actions.add_parser("consume", help="a JetStream worker (reminders.nats_url)")
    consume.set_defaults(func=run_consume)
    publish = actions.add_parser("publish", help="publish one balance event to JetStream")
    publish.add_argument("msisdn")
    publish.add_argument("amount", help="the balance after the event, e.g. 4.80")
    publish.add_argument("--type", default="BalanceUsageEvent")
    publish.add_argument("--subject", default="billing.balance.cli")
    publish.set_defaults(func=run_publish)
    for each in (status, export, consume, publish):
        each.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")


def _build(args: argparse.Namespace) -> Any:
    from hotline.base.privacy import Pseudonymizer
    from hotline.cli import settings_from_args
    from hotline.reminders.wiring import open_reminders
    from hotline.store.outbox import Outbox

    settings = settings_from_args(args)
    sms = settings.sms
    outbox = Outbox(
        sms.outbox_url,
        path=sms.outbox_path,
        max_attempts=sms.max_attempts,
        retry_base=sms.retry_base,
        retry_max=sms.retry_max,
    )
    pseudonym = Pseudonymizer(settings.pseudonym_secret.get_secret_value())
    return settings, outbox, pseudonym, open_reminders(settings, outbox, pseudonym)


def run_status(args: argparse.Namespace) -> int:
    async def main() -> dict[str, int]:
        _, outbox, _, reminders = _build(args)
        try:
            counts: dict[str, int] = await reminders.status()
            return counts
        finally:
            await reminders.store.close()
            await outbox.close()

    counts = asyncio.run(main())
    if args.json:
        print(json.dumps(counts, sort_keys=True))
    else:
        for name in sorted(counts):
            print(f"{name:<14}{counts[name]:>10}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    async def main() -> int:
        _, outbox, pseudonym, reminders = _build(args)
        try:
            for record in await reminders.store.consent():
                who = pseudonym(record.subscriber) if args.pseudonymous else record.subscriber
                line = {
                    "subscriber": who,
                    "rule": record.rule,
                    "action": record.action,
                    "threshold": None
                    if record.threshold_minor is None
                    else record.threshold_minor / 100,
                    "channel": record.channel,
                    "at": dt.datetime.fromtimestamp(record.at, dt.UTC).isoformat(),
                }
                print(json.dumps(line, ensure_ascii=False))
        finally:
            await reminders.store.close()
            await outbox.close()
        return 0

    return asyncio.run(main())


def run_consume(args: argparse.Namespace) -> int:
    from hotline.base.logs import setup_logging
    from hotline.reminders.jetstream import Worker
    from hotline.reminders.wiring import jetstream_config

    settings, outbox, pseudonym, reminders = _build(args)
    setup_logging(settings.json_logs, settings.log_level)
    config = jetstream_config(settings)
    if config is None:
        print("reminders.nats_url is not set (HOTLINE_REMINDERS__NATS_URL)", file=sys.stderr)
        return 2

    async def main() -> None:
        worker = Worker(config, reminders.handle, pseudonym, handle_batch=reminders.handle_batch)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        await reminders.store.open()  # a database that does not answer fails fast
        sweeper = asyncio.create_task(reminders.run_sweeper(settings.reminders.sweep_every))
        try:
            await worker.run()
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await reminders.store.close()
            await outbox.close()

    asyncio.run(main())
    return 0


def run_publish(args: argparse.Namespace) -> int:
    import nats

    from hotline.base.privacy import canonical_msisdn
    from hotline.cli import settings_from_args
    from hotline.reminders.events import BalanceEvent
    from hotline.reminders.jetstream import ensure_stream, publish_event
    from hotline.reminders.wiring import jetstream_config

    settings = settings_from_args(args)
    config = jetstream_config(settings)
    if config is None:
        print("reminders.nats_url is not set (HOTLINE_REMINDERS__NATS_URL)", file=sys.stderr)
        return 2
    try:
        number = canonical_msisdn(args.msisdn)
        minor = Decimal(args.amount) * 100
        if minor != minor.to_integral_value():
            raise InvalidOperation
    except (ValueError, InvalidOperation):
        print("usage: hotline reminders publish +8613800138000 4.80", file=sys.stderr)
        return 2
    event = BalanceEvent(
        event_id=f"cli-{uuid.uuid4().hex}",
        event_type=args.type,
        at=time.time(),
        subscriber=number,
        balance_minor=int(minor),
        currency=settings.reminders.currency,
    )

    async def main() -> None:
        nc = await nats.connect(config.url)
        js = nc.jetstream()
        await ensure_stream(js, config)
        await publish_event(js, args.subject, event)
        await nc.drain()

    asyncio.run(main())
    print(event.event_id)
    return 0
