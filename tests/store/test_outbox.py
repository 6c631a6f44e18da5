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
                assert len(rows) <= 7  # the limit holds (PostgreSQL once took them all)
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
        assert migrate(engine, MIGRATIONS) == ["outbox-1-create", "outbox-2-parts"]
        assert migrate(engine, MIGRATIONS) == []
    finally:
        engine.dispose()


async def test_a_long_message_is_delivered_when_every_part_is(outbox: Outbox) -> None:
    ok = await outbox.send(PHONE, "x", {}, "zh-CN")
    bad = await outbox.send(PHONE, "x", {}, "zh-CN")
    single = await outbox.send(PHONE, "x", {}, "zh-CN")
    await outbox.claim(10, 30)
    for ident in (ok, bad, single):
        assert await outbox.begin(ident, 30)
    await outbox.sent(ok, "a1", ["a1", "a2", "a3"])
    await outbox.sent(bad, "b1", ["b1", "b2"])
    await outbox.sent(single, "c1", ["c1"])
    states = lambda: outbox.rows([ok, bad, single])  # noqa: E731
    # Parts' receipts in any order; the message waits for the last one.
    assert await outbox.record_receipt("a2", "delivered") == ok
    assert await outbox.record_receipt("a1", "accepted") == ok
    assert await outbox.record_receipt("a1", "delivered") == ok
    assert [r["state"] for r in await states()] == ["sent", "sent", "sent"]
    assert await outbox.record_receipt("a3", "delivered") == ok
    # One failed part fails the message, whatever the other says (before or after).
    assert await outbox.record_receipt("b2", "failed") == bad
    assert await outbox.record_receipt("b1", "delivered") == bad
    # A message of one part: its own id, no parts kept.
    assert await outbox.record_receipt("c1", "delivered") == single
    assert [r["state"] for r in await states()] == ["delivered", "failed", "delivered"]
    assert await outbox.record_receipt("nobody", "delivered") is None


def test_workers_migrating_at_once_apply_each_migration_once(database_url: str) -> None:
    """Four workers start together on a fresh database (threads, each its own engine:
    real concurrent sessions); a slow migration widens the window. Each migration runs
    once, nobody fails, and every worker then sees the full schema."""
    import threading
    import time as _time

    from sqlalchemy import Connection, inspect, text

    from hotline.store.db import Migration, migrate
    from hotline.store.outbox import MIGRATIONS

    runs: list[str] = []

    def slow(conn: Connection) -> None:
        runs.append("slow")
        _time.sleep(0.5)
        conn.execute(text("CREATE TABLE race_probe (id INTEGER PRIMARY KEY)"))

    migrations = (*MIGRATIONS, Migration("race-probe", slow))
    start = threading.Barrier(4)
    results: list[list[str] | BaseException] = []

    def worker() -> None:
        engine = open_database(database_url)
        try:
            start.wait()
            results.append(migrate(engine, migrations))
        except BaseException as exc:  # reported below
            results.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not [r for r in results if isinstance(r, BaseException)], results
    applied = [m for r in results if isinstance(r, list) for m in r]
    assert sorted(applied) == sorted(m.id for m in migrations)  # each once, by someone
    assert runs == ["slow"]
    engine = open_database(database_url)
    try:
        assert {"sms_outbox", "sms_outbox_parts", "race_probe"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()


async def test_purge_deletes_only_long_finished_messages(outbox: Outbox, clock: Clock) -> None:
    old_done = await outbox.send(PHONE, "x", {}, "en")
    old_failed = await outbox.send(PHONE, "x", {}, "en")
    await outbox.claim(10, 30)
    for ident in (old_done, old_failed):
        assert await outbox.begin(ident, 30)
    await outbox.sent(old_done, "p1", ["p1", "p2"])
    await outbox.record_receipt("p1", "delivered")
    await outbox.record_receipt("p2", "delivered")
    await outbox.fail(old_failed, "refused")
    clock.now += 40 * 86400
    recent = await outbox.send(PHONE, "x", {}, "en")
    await outbox.claim(10, 30)
    assert await outbox.begin(recent, 30)
    await outbox.sent(recent, "r1")
    await outbox.record_report(recent, "delivered")
    waiting = await outbox.send(PHONE, "x", {}, "en")  # queued long: never purged
    clock.now += 86400
    assert await outbox.purge(30 * 86400) == 2
    assert [r["id"] for r in await outbox.rows()] == [recent, waiting]
    assert await outbox.record_receipt("p1", "delivered") is None  # its parts went too
    assert await outbox.purge(30 * 86400) == 0


async def test_observers_are_told_each_change_once(outbox: Outbox, clock: Clock) -> None:
    told: list[str] = []
    outbox.observers.append(told.append)
    first = await outbox.send(PHONE, "x", {}, "en", dedupe="o-1")
    await outbox.send(PHONE, "x", {}, "en", dedupe="o-1")  # the same: not queued again
    second = await outbox.send(PHONE, "x", {}, "en")
    await outbox.claim(10, 30)
    assert await outbox.begin(first, 30) and await outbox.begin(second, 30)
    assert await outbox.retry(second, "throttled", 1) == "queued"
    await outbox.sent(first, "s1")
    await outbox.record_report(first, "delivered")
    await outbox.record_report(first, "delivered")  # a repeated report: counted once
    clock.now += 10
    (row,) = await outbox.claim(10, 30)
    assert await outbox.begin(row.id, 30)
    clock.now += 31  # the worker died mid-send: in doubt, then abandoned
    await outbox.recover(doubt_grace=5)
    clock.now += 6
    await outbox.recover(doubt_grace=5)
    assert told == [
        "queued", "queued", "retried", "sent", "delivered", "doubt", "abandoned"
    ]  # fmt: skip


async def test_take_records_the_last_window_and_takes_the_next_in_one_go(
    outbox: Outbox, clock: Clock
) -> None:
    from hotline.store.outbox import Accepted

    told: list[str] = []
    outbox.observers.append(told.append)
    ids = [await outbox.send(PHONE, "x", {"n": Text(str(n))}, "en") for n in range(5)]
    first = await outbox.take(2, lease=30)
    assert [r.id for r in first] == ids[:2]
    assert [r.attempts for r in first] == [1, 1]  # counted when taken: it may go out now
    assert {r["id"]: r["state"] for r in await outbox.rows(ids[:3])} == {
        ids[0]: "sending",
        ids[1]: "sending",
        ids[2]: "queued",
    }
    second = await outbox.take(
        2, lease=30, sent=[Accepted(ids[0], "m-0"), Accepted(ids[1], "m-1", ("m-1", "m-1b"))]
    )
    assert [r.id for r in second] == ids[2:4]
    rows = {r["id"]: r for r in await outbox.rows(ids)}
    assert [rows[i]["state"] for i in ids] == ["sent", "sent", "sending", "sending", "queued"]
    assert (rows[ids[0]]["smsc_ref"], rows[ids[1]]["smsc_ref"]) == ("m-0", "m-1")
    assert await outbox.record_receipt("m-1b", "delivered") == ids[1]  # its parts are kept
    await outbox.take(0, lease=30, sent=[Accepted(ids[0], "again")])  # recorded already
    assert told.count("sent") == 2
    # A crash now: the taken rows were maybe submitted — in doubt, never taken again.
    clock.now += 31
    moved = await outbox.recover(doubt_grace=60)
    assert moved["doubt"] == 2 and moved["requeued"] == 0
    assert [r.id for r in await outbox.take(10, lease=30)] == ids[4:]


async def test_concurrent_takers_never_share_a_row(database_url: str) -> None:
    boxes = [Outbox(database_url) for _ in range(4)]
    try:
        ids = [await boxes[0].send(PHONE, "x", {"n": Text(str(n))}, "en") for n in range(200)]
        taken: list[int] = []

        async def drain(box: Outbox) -> None:
            while rows := await box.take(7, lease=60):
                assert len(rows) <= 7
                taken.extend(row.id for row in rows)
                await asyncio.sleep(0)

        await asyncio.gather(*(drain(box) for box in boxes))
        assert sorted(taken) == ids
    finally:
        for box in boxes:
            await box.close()


async def test_a_message_kannel_split_waits_for_every_report(outbox: Outbox) -> None:
    """Kannel reports a split message once for the SMSC's acceptance of every part
    (8, or 16) and per part it asked a receipt of (each with that part's id, %F): the
    message is delivered when every report is in, failed once one says failed."""
    from hotline.store.outbox import ALL_PARTS, Accepted

    ok, late_fail, early_fail, refused = [
        await outbox.send(PHONE, "x", {}, "zh-CN") for _ in range(4)
    ]
    taken = await outbox.take(10, lease=30)
    await outbox.sent_many([Accepted(r.id, "0: Accepted", (ALL_PARTS, "")) for r in taken])
    state = lambda ident: outbox.state_of(ident)  # noqa: E731
    # Delivered: the part's receipt and the SMSC's acceptance, in either order.
    assert await outbox.record_report(ok, "delivered", "k-1")
    assert await state(ok) == "sent"
    assert await outbox.record_report(ok, "delivered", "k-1")  # repeated: still waiting
    assert await state(ok) == "sent"
    assert await outbox.record_report(ok, "buffered", "k-1")
    assert await outbox.record_report(ok, "accepted", "k-1")
    assert await state(ok) == "delivered"
    # Delivered so far, then the SMSC refused a later part (16): failed, and it stays so.
    assert await outbox.record_report(late_fail, "delivered", "l-1")
    assert await outbox.record_report(late_fail, "failed", "")
    assert await outbox.record_report(late_fail, "accepted", "l-1")
    assert await state(late_fail) == "failed"
    # The part's own receipt says failed before anything else arrives.
    assert await outbox.record_report(early_fail, "failed", "e-1")
    assert await outbox.record_report(early_fail, "accepted", "e-1")
    assert await outbox.record_report(early_fail, "delivered", "e-1")
    assert await state(early_fail) == "failed"
    # Refused by the SMSC outright (16): failed at once.
    assert await outbox.record_report(refused, "failed", "r-1")
    assert await state(refused) == "failed"
    assert await outbox.counts() == {"delivered": 1, "failed": 3}


async def test_a_receipt_never_lands_on_a_settled_message_with_the_same_smsc_id(
    outbox: Outbox,
) -> None:
    """An SMSC that restarted numbers its messages from 1 again. A receipt that overtakes
    `sent` for the new message must wait for it, not settle the old one of that id."""
    from hotline.store.outbox import Accepted

    old = await outbox.send(PHONE, "x", {"n": Text("old")}, "en")
    await outbox.take(1, lease=30)
    await outbox.sent_many([Accepted(old, "1")])
    assert await outbox.record_receipt("1", "delivered") == old

    new = await outbox.send(PHONE, "x", {"n": Text("new")}, "en")
    assert [row.id for row in await outbox.take(1, lease=30)] == [new]
    # Its receipt arrives before the sender recorded the SMSC's id "1" for it:
    assert await outbox.record_receipt("1", "delivered") is None
    assert await outbox.state_of(old) == "delivered"
    await outbox.sent_many([Accepted(new, "1")])
    assert await outbox.record_receipt("1", "delivered") == new  # looked up again: found
    assert await outbox.state_of(new) == "delivered"
    # Parts likewise: a settled part does not take a newer part's receipt.
    long = await outbox.send(PHONE, "x", {"n": Text("long")}, "en")
    await outbox.take(1, lease=30)
    await outbox.sent_many([Accepted(long, "2", ("2", "3"))])
    assert await outbox.record_receipt("2", "delivered") == long
    assert await outbox.record_receipt("3", "delivered") == long
    assert await outbox.state_of(long) == "delivered"
    again = await outbox.send(PHONE, "x", {"n": Text("again")}, "en")
    await outbox.take(1, lease=30)
    assert await outbox.record_receipt("3", "failed") is None
    assert await outbox.state_of(long) == "delivered"
    await outbox.sent_many([Accepted(again, "3")])
    assert await outbox.record_receipt("3", "failed") == again
    assert await outbox.state_of(again) == "failed"
