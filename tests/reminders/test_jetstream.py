"""Events over a real nats-server with JetStream: duplicates, redeliveries, bad bodies and
two workers on one durable consumer all end with one SMS per crossing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest

from hotline.base.privacy import Pseudonymizer
from hotline.reminders.events import BalanceEvent, event_body
from hotline.reminders.jetstream import JetStreamConfig, Worker, ensure_stream, publish_event
from hotline.reminders.service import SMS_KEY, Reminders
from hotline.store.outbox import Outbox
from tests.reminders.conftest import NOON, PHONE, Clock, NatsServer, make_reminders, usage

PSEUDONYM = Pseudonymizer("reminders-test-secret")


def _config(server: NatsServer, **extra: object) -> JetStreamConfig:
    options: dict[str, object] = {"ack_wait": 2.0, "batch": 50, **extra}
    return JetStreamConfig(url=server.url, **options)  # type: ignore[arg-type]


class Publisher:
    def __init__(self, js: object, config: JetStreamConfig) -> None:
        self.js = js
        self.config = config

    async def event(self, event: BalanceEvent, subject: str = "billing.balance.p0") -> object:
        return await publish_event(self.js, subject, event)  # type: ignore[arg-type]

    async def raw(self, body: bytes, ident: str) -> object:
        return await self.js.publish(  # type: ignore[attr-defined]
            "billing.balance.p1", body, headers={"Nats-Msg-Id": ident}
        )


@pytest.fixture
async def publisher(nats_server: NatsServer) -> AsyncIterator[Publisher]:
    config = _config(nats_server)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_stream(js, config)
    yield Publisher(js, config)
    await nc.drain()


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


async def _sms(outbox: Outbox) -> list[dict[str, object]]:
    return [row for row in await outbox.rows() if row["key"] == SMS_KEY]


async def _running(worker: Worker) -> asyncio.Task[None]:
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 10)
    return task


async def _stop(worker: Worker, task: asyncio.Task[None]) -> None:
    worker.stop()
    await asyncio.wait_for(task, 10)


async def test_duplicate_message_ids_and_repeated_events_send_one_sms(
    nats_server: NatsServer, publisher: Publisher, reminders: Reminders, outbox: Outbox
) -> None:
    await reminders.subscribe(PHONE, 5, channel="ussd", language="zh-CN")
    below = usage("4.80", at=NOON, ident="ocs-1")
    acks = [await publisher.event(below) for _ in range(3)]
    assert [bool(a.duplicate) for a in acks] == [False, True, True]  # type: ignore[attr-defined]
    # The same balance, re-sent by billing under a new id: the broker cannot tell.
    await publisher.event(usage("4.80", at=NOON, ident="ocs-1-resent"))
    worker = Worker(_config(nats_server), reminders.handle, PSEUDONYM)
    task = await _running(worker)
    try:
        await _until(lambda: _handled(worker, 2))
    finally:
        await _stop(worker, task)
    assert len(await _sms(outbox)) == 1


async def _handled(worker: Worker, count: int) -> bool:
    return worker.handled >= count


async def test_a_failed_handling_is_redelivered_and_sends_once(
    nats_server: NatsServer, publisher: Publisher, reminders: Reminders, outbox: Outbox
) -> None:
    await reminders.subscribe(PHONE, 10, channel="sms", language="en")
    calls: list[str] = []

    async def flaky(event: BalanceEvent) -> str:
        calls.append(event.event_id)
        outcome = await reminders.handle(event)
        if len(calls) == 1:
            raise ConnectionError("outbox went away after deciding")
        return outcome

    await publisher.event(usage("9.00", at=NOON, ident="ocs-2"))
    worker = Worker(_config(nats_server), flaky, PSEUDONYM, retry_delay=0.2)
    task = await _running(worker)
    try:
        await _until(lambda: _handled(worker, 1))
    finally:
        await _stop(worker, task)
    assert calls == ["ocs-2", "ocs-2"]
    assert worker.failed == 1
    assert len(await _sms(outbox)) == 1


async def test_bad_bodies_are_terminated_and_logged_pseudonymously(
    nats_server: NatsServer,
    publisher: Publisher,
    reminders: Reminders,
    outbox: Outbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await reminders.subscribe(PHONE, 5, channel="ussd", language="zh-CN")
    good = usage("1.00", at=NOON, ident="ocs-good")
    bad_amount = event_body(good).replace(b'"1.00"', b'"lots"')
    await publisher.raw(b"\xff\xfe not json", "junk-1")
    await publisher.raw(bad_amount, "junk-2")
    await publisher.event(good)
    worker = Worker(_config(nats_server), reminders.handle, PSEUDONYM)
    with caplog.at_level(logging.WARNING, logger="hotline.reminders"):
        task = await _running(worker)
        try:
            await _until(lambda: _handled(worker, 1))
        finally:
            await _stop(worker, task)
    assert worker.rejected == 2
    assert len(await _sms(outbox)) == 1
    text = caplog.text
    assert "terminated" in text
    assert PSEUDONYM(PHONE) in text
    assert "13800138000" not in text
    # Terminated means gone: a fresh worker on the durable consumer gets nothing again.
    again = Worker(_config(nats_server), reminders.handle, PSEUDONYM)
    task = await _running(again)
    await asyncio.sleep(1.5)
    await _stop(again, task)
    assert again.rejected == 0 and again.handled == 0


@pytest.mark.parametrize("batched", [False, True])
async def test_two_workers_share_the_durable_consumer(
    batched: bool,
    nats_server: NatsServer,
    publisher: Publisher,
    database_url: str,
    clock: Clock,
    outbox: Outbox,
) -> None:
    first = make_reminders(database_url, clock, outbox)
    second = make_reminders(database_url, clock, outbox)
    phones = [f"+86138{i:08d}" for i in range(20)]
    for phone in phones:
        await first.subscribe(phone, 20, channel="ussd", language="zh-CN")
    sent = 0
    for step, amount in enumerate(("25.00", "19.00", "15.00", "50.00", "10.00")):
        for phone in phones:
            await publisher.event(
                usage(amount, at=NOON + step, ident=f"{phone}-{step}", subscriber=phone)
            )
            sent += 1
    workers = [
        Worker(
            # A batch not acknowledged within ack_wait is redelivered by design; on a busy
            # machine 50 handlings can take 2 s: wait long, this test counts sharing.
            _config(nats_server, ack_wait=30.0),
            service.handle,
            PSEUDONYM,
            handle_batch=service.handle_batch if batched else None,
        )
        for service in (first, second)
    ]
    tasks = [await _running(w) for w in workers]

    async def all_handled() -> bool:
        return sum(w.handled for w in workers) >= sent

    try:
        await _until(all_handled, timeout=60)
    finally:
        for w, t in zip(workers, tasks, strict=True):
            await _stop(w, t)
        await second.store.close()
    assert sum(w.handled for w in workers) == sent  # nothing processed twice
    assert all(w.handled > 0 for w in workers)
    # In order: 25 → 19 crosses; 50 re-arms; 10 crosses again. Two workers may apply a
    # subscriber's events out of order; an older one is then stale and fires nothing,
    # so each subscriber gets one or two SMS — exactly one per crossing in the ledger.
    rows = await _sms(outbox)
    per_phone: dict[str, int] = {}
    for row in rows:
        per_phone[str(row["subscriber"])] = per_phone.get(str(row["subscriber"]), 0) + 1
    assert len(per_phone) == len(phones)
    assert set(per_phone.values()) <= {1, 2}
    ledger = await first.store.crossings()
    assert len(rows) == len(ledger)
    assert {c["state"] for c in ledger} == {"queued"}
    await first.store.close()
