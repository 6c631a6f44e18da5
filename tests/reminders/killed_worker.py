"""A JetStream worker that SIGKILLs itself at one point of handling its first crossing.

    python -m tests.reminders.killed_worker NATS_URL DATABASE_URL POINT

POINT `decided`: after the crossing is decided, before the outbox has the SMS;
`sent`: after the outbox has it, before the crossing is marked queued. Used by
test_killed.py; the real service and store, only the outbox is wrapped to die.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from hotline.base.privacy import Pseudonymizer
from hotline.base.values import Value
from hotline.reminders.jetstream import JetStreamConfig, Worker
from hotline.reminders.quiet import QuietHours
from hotline.reminders.service import Reminders
from hotline.reminders.store import ReminderStore
from hotline.store.outbox import Outbox


class DyingOutbox:
    def __init__(self, outbox: Outbox, point: str) -> None:
        self.outbox = outbox
        self.point = point

    async def send(
        self, subscriber: str, key: str, values: Mapping[str, Value], language: str, **kw: Any
    ) -> int:
        if self.point == "decided":
            os.kill(os.getpid(), signal.SIGKILL)
        ident = await self.outbox.send(subscriber, key, values, language, **kw)
        os.kill(os.getpid(), signal.SIGKILL)
        return ident


async def main(nats_url: str, database_url: str, point: str) -> None:
    outbox = Outbox(database_url)
    # Quiet hours off: the test runs at any time of day.
    quiet = QuietHours(dt.time(0, 0), dt.time(0, 0), ZoneInfo("Asia/Shanghai"))
    reminders = Reminders(
        ReminderStore(database_url),
        DyingOutbox(outbox, point),
        quiet=quiet,
        pseudonym=Pseudonymizer("reminders-test-secret"),
    )
    worker = Worker(
        JetStreamConfig(url=nats_url, ack_wait=1.0), reminders.handle, reminders.pseudonym
    )
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
