"""Workers killed with SIGKILL — at a chosen point of handling a crossing, and at random
while a real `hotline reminders consume` works through a stream — then replaced: every
crossing ends with exactly one SMS in the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest

from hotline.base.privacy import Pseudonymizer
from hotline.reminders.jetstream import JetStreamConfig, Worker, ensure_stream, publish_event
from hotline.reminders.quiet import QuietHours
from hotline.reminders.service import SMS_KEY, Reminders
from hotline.reminders.store import ReminderStore
from hotline.store.outbox import Outbox
from tests.reminders.conftest import PHONE, ZONE, NatsServer, usage
from tests.sms.conftest import ROOT

NOW = time.time()


def _reminders(database_url: str, outbox: Outbox) -> Reminders:
    return Reminders(
        ReminderStore(database_url),
        outbox,
        quiet=QuietHours(dt.time(0, 0), dt.time(0, 0), ZONE),  # none: runs at any hour
        pseudonym=Pseudonymizer("reminders-test-secret"),
        daily_cap=100,
    )


async def _publish(server: NatsServer, events: list[object]) -> None:
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    await ensure_stream(js, JetStreamConfig(url=server.url))
    for event in events:
        await publish_event(js, "billing.balance.p0", event)  # type: ignore[arg-type]
    await nc.close()


async def _sms(outbox: Outbox) -> list[dict[str, object]]:
    return [row for row in await outbox.rows() if row["key"] == SMS_KEY]


@pytest.mark.parametrize("point", ["decided", "sent"])
async def test_killed_between_decided_and_queued_sends_once(
    point: str, nats_server: NatsServer, database_url: str
) -> None:
    outbox = Outbox(database_url)
    await outbox.counts()
    reminders = _reminders(database_url, outbox)
    await reminders.subscribe(PHONE, 5, channel="ussd", language="zh-CN")
    await _publish(nats_server, [usage("4.80", at=NOW, ident="ocs-kill")])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reminders.killed_worker",
            nats_server.url,
            database_url,
            point,
        ],
        cwd=ROOT,
    )
    assert proc.wait(timeout=30) == -signal.SIGKILL  # it died where it was told to
    [crossing] = await reminders.store.crossings()
    assert crossing["state"] == "decided"
    assert len(await _sms(outbox)) == (1 if point == "sent" else 0)
    # A replacement worker gets the unacknowledged event again (ack_wait 1 s).
    worker = Worker(
        JetStreamConfig(url=nats_server.url, ack_wait=1.0), reminders.handle, reminders.pseudonym
    )
    task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 20
    while worker.handled < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    worker.stop()
    await asyncio.wait_for(task, 10)
    assert worker.handled == 1
    assert len(await _sms(outbox)) == 1
    [crossing] = await reminders.store.crossings()
    assert crossing["state"] == "queued"
    await reminders.store.close()
    await outbox.close()


def _consume(server: NatsServer, database_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HOTLINE_REMINDERS__NATS_URL": server.url,
        "HOTLINE_REMINDERS__DATABASE_URL": database_url,
        "HOTLINE_REMINDERS__ACK_WAIT": "1",
        "HOTLINE_REMINDERS__BATCH": "20",
        "HOTLINE_REMINDERS__QUIET_START": "00:00",
        "HOTLINE_REMINDERS__QUIET_END": "00:00",
        "HOTLINE_REMINDERS__DAILY_CAP": "100",
        "HOTLINE_REMINDERS__STUCK_AFTER": "1",
        "HOTLINE_REMINDERS__SWEEP_EVERY": "0.5",
        "HOTLINE_SMS__OUTBOX_URL": database_url,
        "HOTLINE_PSEUDONYM_SECRET": "reminders-test-secret",
    }
    program = "import sys; from hotline.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", program, "reminders", "consume"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_consume_killed_at_random_and_restarted_sends_each_crossing_once(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'hotline.sqlite3'}"
    outbox = Outbox(database_url)
    await outbox.counts()
    reminders = _reminders(database_url, outbox)
    phones = [f"+86138{i:08d}" for i in range(40)]
    for phone in phones:
        await reminders.subscribe(phone, 10, channel="sms", language="zh-CN")
    events = [
        usage(amount, at=NOW + step, ident=f"{phone}-{step}", subscriber=phone)
        for step, amount in enumerate(("8.00", "30.00", "5.00", "40.00", "9.00"))
        for phone in phones
    ]
    await _publish(nats_server, events)
    for target in (10, 50, 90):  # killed three times mid-stream, after so many SMS
        proc = _consume(nats_server, database_url, tmp_path)
        deadline = time.monotonic() + 60
        while len(await _sms(outbox)) < target and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert target <= len(await _sms(outbox)) < 3 * len(phones)
    proc = _consume(nats_server, database_url, tmp_path)
    try:
        deadline = time.monotonic() + 90
        while len(await _sms(outbox)) < 3 * len(phones) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.5)  # time for a wrong second copy to show up
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    rows = await _sms(outbox)
    ledger = await reminders.store.crossings()
    # One worker, in order: 8 (fires) · 30 (re-arms) · 5 (fires) · 40 · 9 (fires).
    assert len(ledger) == 3 * len(phones)
    assert {c["state"] for c in ledger} == {"queued"}
    assert len(rows) == len(ledger)
    assert len({row["dedupe"] for row in rows}) == len(rows)
    await reminders.store.close()
    await outbox.close()
