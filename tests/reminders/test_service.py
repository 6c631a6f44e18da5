"""One SMS per crossing, on SQLite and a real PostgreSQL with the real outbox: re-arming,
stale and repeated events, racing workers, quiet hours, the daily cap, opt-out."""

from __future__ import annotations

import asyncio
import datetime as dt

from hotline.base.values import Count, Money, Text
from hotline.reminders.service import SMS_KEY, Reminders
from hotline.store.outbox import Outbox
from tests.reminders.conftest import (
    NOON,
    OTHER,
    OTHER_C,
    PHONE,
    PHONE_C,
    ZONE,
    Clock,
    make_reminders,
    usage,
)


async def _sms(outbox: Outbox) -> list[dict[str, object]]:
    return [row for row in await outbox.rows() if row["key"] == SMS_KEY]


async def test_falls_below_once_then_rearmed_by_a_topup(
    reminders: Reminders, outbox: Outbox
) -> None:
    await reminders.subscribe(PHONE, 5, channel="ussd", language="zh-CN")
    assert await reminders.handle(usage("12.50", at=NOON)) == "unchanged"
    assert await reminders.handle(usage("4.80", at=NOON + 1)) == "fired"
    assert await reminders.handle(usage("3.10", at=NOON + 2)) == "unchanged"  # still below
    rows = await _sms(outbox)
    assert len(rows) == 1
    queued = await outbox.claim(10, lease=30)
    assert queued[0].values == {
        "balance": Money(480, "CNY"),
        "threshold": Count(5),
        "keyword": Text("QXTX"),
    }
    assert queued[0].language == "zh-CN"
    assert queued[0].subscriber == PHONE_C

    assert await reminders.handle(usage("53.10", at=NOON + 3)) == "rearmed"
    assert await reminders.handle(usage("4.00", at=NOON + 4)) == "fired"
    assert len(await _sms(outbox)) == 2
    crossings = await reminders.store.crossings(PHONE_C)
    assert [(c["generation"], c["state"]) for c in crossings] == [(1, "queued"), (2, "queued")]


async def test_repeated_and_stale_events_fire_nothing_more(
    reminders: Reminders, outbox: Outbox
) -> None:
    await reminders.subscribe(PHONE, 10, channel="sms", language="en")
    below = usage("9.00", at=NOON + 10, ident="e1")
    for _ in range(3):
        await reminders.handle(below)  # redelivered
    # A top-up applied at NOON+20, then a usage event from before it arrives late.
    assert await reminders.handle(usage("60.00", at=NOON + 20, ident="topup")) == "rearmed"
    assert await reminders.handle(usage("8.00", at=NOON + 15, ident="late")) == "stale"
    assert len(await _sms(outbox)) == 1
    sub = await reminders.store.subscription(PHONE_C)
    assert sub is not None and sub.armed


async def test_two_workers_racing_on_one_subscriber_queue_one_sms(
    database_url: str, clock: Clock, outbox: Outbox
) -> None:
    workers = [make_reminders(database_url, clock, outbox) for _ in range(4)]
    try:
        await workers[0].subscribe(PHONE, 20, channel="ussd", language="zh-CN")
        events = [usage(f"{19 - i}.00", at=NOON + i) for i in range(6)]
        await asyncio.gather(*(w.handle(e) for w in workers for e in events))
        assert len(await _sms(outbox)) == 1
        assert [c["state"] for c in await workers[1].store.crossings()] == ["queued"]
    finally:
        for w in workers:
            await w.store.close()


async def test_a_decided_crossing_left_behind_is_queued_once(
    reminders: Reminders, outbox: Outbox, clock: Clock
) -> None:
    """What a worker killed between "decided" and "queued" leaves: the redelivered event
    and the sweep both finish it, one SMS."""
    await reminders.subscribe(PHONE, 5, channel="ussd", language="zh-CN")
    applied = await reminders.store.apply(usage("4.00", at=NOON))  # decided, then "killed"
    assert [c.state for c in applied.pending] == ["decided"]
    assert await _sms(outbox) == []
    await reminders.handle(usage("4.00", at=NOON))  # the redelivery
    clock.now += 120
    assert await reminders.sweep() == 0  # nothing left to do
    # The same with the crash after the outbox took it but before "queued" was written.
    await reminders.handle(usage("30.00", at=NOON + 1))
    applied = await reminders.store.apply(usage("2.00", at=NOON + 2))
    await outbox.send(
        PHONE_C, SMS_KEY, {"balance": Money(200, "CNY")}, "zh-CN", dedupe=applied.pending[0].dedupe
    )
    clock.now += 120
    assert await reminders.sweep() == 1
    assert len(await _sms(outbox)) == 2
    assert {c["state"] for c in await reminders.store.crossings()} == {"queued"}


async def test_quiet_hours_defer_until_morning_and_a_topup_cancels(
    reminders: Reminders, outbox: Outbox, clock: Clock
) -> None:
    night = dt.datetime(2026, 12, 6, 23, 30, tzinfo=ZONE).timestamp()
    clock.now = night
    await reminders.subscribe(PHONE, 5, channel="ivr", language="zh-CN")
    await reminders.subscribe(OTHER, 5, channel="ussd", language="zh-CN")
    await reminders.handle(usage("4.00", at=night))
    await reminders.handle(usage("1.00", at=night, subscriber=OTHER))
    assert await _sms(outbox) == []
    morning = dt.datetime(2026, 12, 7, 8, 0, tzinfo=ZONE).timestamp()
    assert {c["due_at"] for c in await reminders.store.crossings()} == {morning}
    await reminders.handle(usage("100.00", at=night + 60, subscriber=OTHER))  # topped up
    clock.now = morning - 1
    assert await reminders.sweep() == 0
    clock.now = morning
    assert await reminders.sweep() == 2
    rows = await _sms(outbox)
    assert [r["subscriber"] for r in rows] == [PHONE_C]
    states = {c["subscriber"]: c["state"] for c in await reminders.store.crossings()}
    assert states == {PHONE_C: "queued", OTHER_C: "obsolete"}


async def test_daily_cap_defers_to_the_next_day(
    database_url: str, clock: Clock, outbox: Outbox
) -> None:
    service = make_reminders(database_url, clock, outbox, daily_cap=2)
    try:
        await service.subscribe(PHONE, 50, channel="sms", language="zh-CN")
        at = NOON
        for _ in range(3):
            await service.handle(usage("40.00", at=at))
            await service.handle(usage("80.00", at=at + 1))
            at += 2
        assert len(await _sms(outbox)) == 2
        tomorrow = dt.datetime(2026, 12, 7, 8, 0, tzinfo=ZONE).timestamp()
        deferred = [c for c in await service.store.crossings() if c["state"] == "deferred"]
        assert [c["due_at"] for c in deferred] == [tomorrow]
        # The third crossing was re-armed since (80元): obsolete, not sent tomorrow.
        clock.now = tomorrow
        assert await service.sweep() == 1
        assert len(await _sms(outbox)) == 2
    finally:
        await service.store.close()


async def test_opted_out_and_unknown_subscribers_get_nothing(
    reminders: Reminders, outbox: Outbox
) -> None:
    assert await reminders.handle(usage("1.00", subscriber=OTHER)) == "unsubscribed"
    await reminders.subscribe(PHONE, 5, channel="ussd", language="zh-CN")
    assert await reminders.unsubscribe(PHONE, channel="sms")
    assert not await reminders.unsubscribe(PHONE, channel="sms")
    assert await reminders.handle(usage("1.00")) == "unsubscribed"
    assert await _sms(outbox) == []
    consent = await reminders.store.consent(PHONE_C)
    assert [(c.action, c.channel, c.threshold_minor) for c in consent] == [
        ("in", "ussd", 500),
        ("out", "sms", None),
    ]


async def test_threshold_outside_the_offer_is_refused(reminders: Reminders) -> None:
    try:
        await reminders.subscribe(PHONE, 7, channel="ussd", language="zh-CN")
    except ValueError as exc:
        assert "5, 10, 20, 50" in str(exc)
    else:
        raise AssertionError("7元 accepted")
    assert await reminders.threshold_of(PHONE) is None


async def test_status_counts_follow_the_outbox(reminders: Reminders, outbox: Outbox) -> None:
    await reminders.subscribe(PHONE, 5, channel="ussd", language="zh-CN")
    await reminders.subscribe(OTHER, 5, channel="ussd", language="zh-CN")
    await reminders.handle(usage("4.00"))
    [row] = await outbox.claim(10, lease=30)
    assert await outbox.begin(row.id, lease=30)
    await outbox.sent(row.id, "ref-1")
    await outbox.record_report(row.id, "delivered")
    counts = await reminders.status()
    assert counts["subscribed"] == 2
    assert counts["armed"] == 1
    assert counts["fired"] == 1
    assert counts["queued"] == 1
    assert counts["sms_delivered"] == 1
