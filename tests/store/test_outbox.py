"""The durable outbox on SQLite (the embedded default) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hotline.base.values import Money, Text
from hotline.store.db import open_database
from hotline.store.outbox import Outbox
from tests.store.pg import postgres_url

PHONE = "+8613800138000"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'outbox.sqlite3'}"
    else:
        yield from postgres_url()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def outbox(database_url: str, clock: Clock) -> AsyncIterator[Outbox]:
    box = Outbox(database_url, max_attempts=3, retry_base=2.0, clock=clock)
    yield box
    await box.close()


async def test_send_claim_submit_report(outbox: Outbox) -> None:
    ident = await outbox.send(PHONE, "result.balance", {"balance": Money(1250, "CNY")}, "zh-CN")
    rows = await outbox.claim(10, lease=30)
    assert [(r.id, r.subscriber, r.key, r.values, r.language, r.kind) for r in rows] == [
        (ident, PHONE, "result.balance", {"balance": Money(1250, "CNY")}, "zh-CN", "service")
    ]
    assert await outbox.claim(10, lease=30) == []  # claimed rows are nobody else's
    assert await outbox.begin(ident, lease=30)
    await outbox.sent(ident, "smsc-1")
    assert await outbox.record_report(ident, "delivered", "smsc-1")
    assert await outbox.counts() == {"delivered": 1}
    assert not await outbox.record_report(ident + 1000, "delivered")


async def test_dedupe_queues_once(outbox: Outbox) -> None:
    first = await outbox.send(PHONE, "x", {}, "en", kind="receipt", dedupe="order-7")
    second = await outbox.send(PHONE, "x", {}, "en", kind="receipt", dedupe="order-7")
    assert first == second
    assert await outbox.counts() == {"queued": 1}


async def test_unknown_kind_is_refused(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        await outbox.send(PHONE, "x", {}, "en", kind="spam")  # type: ignore[arg-type]


async def test_transient_refusals_back_off_then_fail(outbox: Outbox, clock: Clock) -> None:
    ident = await outbox.send(PHONE, "x", {"t": Text("a")}, "en")
    for attempt, delay in ((1, 2.0), (2, 4.0)):
        (row,) = await outbox.claim(10, 30)
        assert row.attempts == attempt - 1
        assert await outbox.begin(ident, 30)
        assert await outbox.retry(ident, "throttled", row.attempts + 1) == "queued"
        clock.now += delay - 0.5
        assert await outbox.claim(10, 30) == []  # not due yet
        clock.now += 0.5
    (row,) = await outbox.claim(10, 30)
    assert await outbox.begin(ident, 30)
    assert await outbox.retry(ident, "throttled", row.attempts + 1) == "failed"
    (stored,) = await outbox.rows([ident])
    assert stored["state"] == "failed"
    assert stored["attempts"] == 3
    assert "gave up after 3 attempts: throttled" in stored["last_error"]


async def test_a_crash_before_submitting_requeues(outbox: Outbox, clock: Clock) -> None:
    ident = await outbox.send(PHONE, "x", {}, "en")
    await outbox.claim(10, lease=30)  # ...and the worker dies
    clock.now += 31
    assert await outbox.recover(doubt_grace=60) == {"requeued": 1, "doubt": 0, "abandoned": 0}
    (row,) = await outbox.claim(10, 30)
    assert row.id == ident
    assert not await outbox.begin(ident + 1, 30)


async def test_a_crash_while_submitting_is_in_doubt_and_never_resent(
    outbox: Outbox, clock: Clock
) -> None:
    resolved = await outbox.send(PHONE, "x", {}, "en")
    abandoned = await outbox.send(PHONE, "y", {}, "en")
    await outbox.claim(10, lease=30)
    assert await outbox.begin(resolved, 30)
    assert await outbox.begin(abandoned, 30)  # ...both submitted (or not), then a crash
    clock.now += 31
    assert await outbox.recover(doubt_grace=60) == {"requeued": 0, "doubt": 2, "abandoned": 0}
    assert await outbox.claim(10, 30) == []  # in doubt: never claimed again
    assert await outbox.record_report(resolved, "accepted")  # the SMSC had it
    clock.now += 61
    assert await outbox.recover(doubt_grace=60) == {"requeued": 0, "doubt": 0, "abandoned": 1}
    states = {row["id"]: row["state"] for row in await outbox.rows()}
    assert states == {resolved: "sent", abandoned: "failed"}


async def test_a_lost_claim_cannot_begin(outbox: Outbox, clock: Clock) -> None:
    ident = await outbox.send(PHONE, "x", {}, "en")
    await outbox.claim(10, lease=30)
    clock.now += 31
    assert not await outbox.begin(ident, 30)


async def test_concurrent_claimers_never_share_a_row(database_url: str) -> None:
    boxes = [Outbox(database_url) for _ in range(4)]
    try:
        ids = [await boxes[0].send(PHONE, "x", {"n": Text(str(n))}, "en") for n in range(200)]
        claimed: list[int] = []

        async def drain(box: Outbox) -> None:
            while rows := await box.claim(7, lease=60):
                claimed.extend(row.id for row in rows)
                await asyncio.sleep(0)

        await asyncio.gather(*(drain(box) for box in boxes))
        assert sorted(claimed) == ids
    finally:
        for box in boxes:
            await box.close()


def test_migrations_are_recorded_once(database_url: str) -> None:
    from hotline.store.db import migrate
    from hotline.store.outbox import MIGRATIONS

    engine = open_database(database_url)
    try:
        assert migrate(engine, MIGRATIONS) == ["outbox-1-create"]
        assert migrate(engine, MIGRATIONS) == []
    finally:
        engine.dispose()
