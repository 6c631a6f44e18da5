"""Reminders test parts: a real nats-server with JetStream, the store on SQLite and on a
real PostgreSQL, the real outbox, a settable clock."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy

from hotline.base.privacy import Pseudonymizer, canonical_msisdn
from hotline.reminders.events import BalanceEvent
from hotline.reminders.quiet import QuietHours
from hotline.reminders.service import Reminders
from hotline.reminders.store import ReminderStore
from hotline.store.outbox import Outbox
from tests.conftest import free_port
from tests.store.pg import postgres_url

PHONE = "+8613800138000"
OTHER = "+8613900139000"
#: The form hotline stores a number in (`canonical_msisdn`).
PHONE_C = "13800138000"
OTHER_C = "13900139000"
ZONE = ZoneInfo("Asia/Shanghai")
#: 2026-12-06 12:00 in Shanghai: outside the default quiet hours.
NOON = dt.datetime(2026, 12, 6, 12, 0, tzinfo=ZONE).timestamp()


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class NatsServer:
    """`nats-server -js` on a free port with its own store directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not installed (make test installs it on Debian)")
        self.proc = subprocess.Popen(
            [binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The reminders' store and the outbox share one database, as in production."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hotline.sqlite3'}"
    else:
        for url in postgres_url():
            if os.environ.get("HOTLINE_TEST_DATABASE_URL"):
                engine = sqlalchemy.create_engine(url)
                with engine.begin() as conn:
                    conn.execute(
                        sqlalchemy.text(
                            "DROP TABLE IF EXISTS reminder_subscriptions, reminder_consent, "
                            "reminder_crossings, reminder_daily"
                        )
                    )
                engine.dispose()
            yield url


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_reminders(url: str, clock: Clock, outbox: Outbox, **extra: object) -> Reminders:
    options: dict[str, object] = {
        "quiet": QuietHours(dt.time(21, 0), dt.time(8, 0), ZONE),
        "pseudonym": Pseudonymizer("reminders-test-secret"),
        "clock": clock,
        **extra,
    }
    return Reminders(ReminderStore(url, clock=clock), outbox, **options)  # type: ignore[arg-type]


@pytest.fixture
async def outbox(database_url: str, clock: Clock) -> AsyncIterator[Outbox]:
    box = Outbox(database_url, clock=clock)
    await box.counts()  # migrated before tests use it from many threads at once
    yield box
    await box.close()


@pytest.fixture
async def reminders(database_url: str, clock: Clock, outbox: Outbox) -> AsyncIterator[Reminders]:
    service = make_reminders(database_url, clock, outbox)
    yield service
    await service.store.close()


def usage(
    amount: str, *, at: float = NOON, ident: str | None = None, subscriber: str = PHONE
) -> BalanceEvent:
    """A usage event leaving `amount` 元 (a top-up is the same with more)."""
    minor = round(float(amount) * 100)
    return BalanceEvent(
        event_id=ident or f"ev-{at}-{minor}",
        event_type="BalanceUsageEvent",
        at=at,
        subscriber=canonical_msisdn(subscriber),
        balance_minor=minor,
        currency="CNY",
    )
