"""Bundle rules (data/voice share left, bundle expiry) and the exact daily cap, on SQLite
and on a real PostgreSQL, through the real store and outbox."""

from __future__ import annotations

import asyncio
import datetime as dt

import orjson
import pytest

from hotline.base.privacy import canonical_msisdn
from hotline.base.values import Count, Date
from hotline.reminders.events import Allowance, BalanceEvent, EventError, event_body, parse_event
from hotline.reminders.service import Reminders
from hotline.reminders.store import BALANCE_RULE, DATA_RULE, EXPIRY_RULE, VOICE_RULE
from hotline.store.outbox import Outbox
from tests.reminders.conftest import NOON, PHONE, PHONE_C, ZONE, Clock, make_reminders, usage

GB = 1024**3
DAY = 86400.0


def data(
    left: int,
    total: int = 10 * GB,
    *,
    at: float = NOON,
    until: float | None = None,
    kind: str = "data",
    balance: int | None = None,
    subscriber: str = PHONE,
) -> BalanceEvent:
    """An event carrying one data (or voice) package: `left` of `total` remaining."""
    return BalanceEvent(
        event_id=f"{kind}-{at}-{left}-{until}",
        event_type="BalanceUsageEvent",
        at=at,
        subscriber=canonical_msisdn(subscriber),
        balance_minor=balance,
        currency="CNY",
        allowances=(Allowance(kind, f"pkg-{kind}-1", left, total, until),),
    )


async def _sms(outbox: Outbox, key: str) -> list[dict[str, object]]:
    return [row for row in await outbox.rows() if row["key"] == key]


def test_an_event_with_buckets_reads_and_writes_the_same() -> None:
    body = {
        "eventId": "ocs-9",
        "eventTime": "2026-12-06T04:00:00Z",
        "eventType": "BalanceUsageEvent",
        "event": {
            "logicalResource": {"id": PHONE},
            "buckets": [
                {
                    "id": "pkg-data-1",
                    "usageType": "data",
                    "remainingValue": {"amount": 512, "units": "MB"},
                    "totalValue": {"amount": 10, "units": "GB"},
                    "validFor": {"endDateTime": "2026-12-31T23:59:59+08:00"},
                },
                {"id": "pkg-sms-1", "usageType": "sms", "remainingValue": {"amount": 3}},
                {
                    "id": "pkg-voice-1",
                    "usageType": "voice",
                    "remainingValue": {"amount": 30, "units": "minutes"},
                },
            ],
        },
    }
    event = parse_event(orjson.dumps(body))
    assert event.balance_minor is None  # no main balance in this one: nothing about it
    [pkg, voice] = event.allowances
    assert (pkg.kind, pkg.remaining, pkg.total) == ("data", 512 * 1024**2, 10 * GB)
    assert pkg.valid_until == parse_event(orjson.dumps(body)).allowances[0].valid_until
    assert (voice.kind, voice.remaining, voice.total) == ("voice", 1800, None)
    assert parse_event(event_body(event)) == event


@pytest.mark.parametrize(
    ("bucket", "reason"),
    [
        ({"id": "p", "usageType": "data", "remainingValue": {"amount": 1, "units": "TB"}}, "units"),
        (
            {"id": "p", "usageType": "data", "remainingValue": {"amount": -1, "units": "MB"}},
            "range",
        ),
        ({"id": "p", "usageType": "voice", "remainingValue": "1"}, "remainingValue"),
        ({"usageType": "data", "remainingValue": {"amount": 1, "units": "MB"}}, ".id"),
        (
            {
                "id": "p",
                "usageType": "data",
                "remainingValue": {"amount": 1, "units": "MB"},
                "validFor": {"endDateTime": "tomorrow"},
            },
            "endDateTime",
        ),
    ],
)
def test_bad_buckets_are_refused_with_the_reason(bucket: dict[str, object], reason: str) -> None:
    body = {
        "eventId": "ocs-10",
        "eventTime": "2026-12-06T04:00:00Z",
        "eventType": "BalanceUsageEvent",
        "event": {"logicalResource": {"id": PHONE}, "buckets": [bucket]},
    }
    with pytest.raises(EventError, match=reason.replace(".", r"\.")):
        parse_event(orjson.dumps(body))


async def test_data_below_a_share_fires_once_and_rearms_on_renewal(
    reminders: Reminders, outbox: Outbox
) -> None:
    await reminders.subscribe(PHONE, 10, channel="ussd", language="zh-CN", rule=DATA_RULE)
    assert await reminders.handle(data(5 * GB)) == "unchanged"  # 50 % left
    assert await reminders.handle(usage("3.00", at=NOON + 1)) == "unchanged"  # no package
    assert await reminders.handle(data(GB // 2, at=NOON + 2)) == "fired"  # 5 %
    assert await reminders.handle(data(GB // 4, at=NOON + 3)) == "unchanged"  # still below
    assert await reminders.handle(data(GB // 2, at=NOON + 2)) == "stale"  # replayed, older
    [row] = await outbox.claim(10, lease=30)
    assert (row.key, row.values["percent"], row.values["threshold"]) == (
        "reminder.sms_data",
        Count(5),
        Count(10),
    )
    assert await reminders.handle(data(10 * GB, at=NOON + 4)) == "rearmed"  # renewed
    assert await reminders.handle(data(GB // 10, at=NOON + 5)) == "fired"
    assert len(await _sms(outbox, "reminder.sms_data")) == 2
    assert [c["rule"] for c in await reminders.store.crossings()] == [DATA_RULE, DATA_RULE]
    # A voice rule reads only voice packages; the balance rule is not touched at all.
    assert await reminders.rules_of(PHONE) == {DATA_RULE: 10}
    with pytest.raises(ValueError, match="threshold"):
        await reminders.subscribe(PHONE, 15, channel="api", language="zh-CN", rule=VOICE_RULE)
    with pytest.raises(ValueError, match="rule"):
        await reminders.subscribe(PHONE, 10, channel="api", language="zh-CN", rule="sms.low")


async def test_the_bundle_sms_is_worded_per_language(reminders: Reminders, outbox: Outbox) -> None:
    await reminders.subscribe(PHONE, 20, channel="sms", language="en", rule=VOICE_RULE)
    assert await reminders.handle(data(600, 6000, kind="voice")) == "fired"
    [row] = await _sms(outbox, "reminder.sms_voice")
    assert row["language"] == "en"
    crossing = (await reminders.store.crossings())[0]
    assert (crossing["balance_minor"], crossing["threshold_minor"]) == (10, 20)


async def test_bundle_expiry_is_swept_once_and_rearmed_by_a_renewal(
    reminders: Reminders, outbox: Outbox, clock: Clock
) -> None:
    await reminders.subscribe(PHONE, 3, channel="ussd", language="zh-CN", rule=EXPIRY_RULE)
    ends = NOON + 5 * DAY
    assert await reminders.handle(data(5 * GB, until=ends)) == "unchanged"
    assert await reminders.sweep() == 0  # 5 days ahead: not yet
    clock.now = NOON + 2 * DAY + 60  # 3 days minus a minute before the end
    assert await reminders.sweep() == 1
    assert await reminders.sweep() == 0  # decided once
    [row] = await outbox.claim(10, lease=30)
    assert (row.key, row.values["expires"], row.values["days"]) == (
        "reminder.sms_expiry",
        Date(dt.datetime.fromtimestamp(ends, ZONE).date()),
        Count(3),
    )
    # The same package seen again changes nothing; a renewal (a later end) re-arms.
    assert await reminders.handle(data(GB, at=clock.now, until=ends)) == "unchanged"
    later = ends + 30 * DAY
    assert await reminders.handle(data(10 * GB, at=clock.now + 1, until=later)) == "rearmed"
    assert await reminders.sweep() == 0
    clock.now = later - 2 * DAY
    assert await reminders.sweep() == 1
    assert len(await _sms(outbox, "reminder.sms_expiry")) == 2
    # Opted out: nothing is due any more (the sweep reads only armed, active rows).
    await reminders.handle(data(GB, at=clock.now + 1, until=later + 30 * DAY))
    assert await reminders.unsubscribe(PHONE, channel="sms")
    clock.now = later + 28 * DAY
    assert await reminders.sweep() == 0


async def test_the_expiry_sweep_works_in_bounded_batches(
    reminders: Reminders, outbox: Outbox, clock: Clock
) -> None:
    phones = [f"+86138{i:08d}" for i in range(7)]
    for i, phone in enumerate(phones):
        await reminders.subscribe(phone, 1, channel="api", language="zh-CN", rule=EXPIRY_RULE)
        await reminders.handle(data(GB, until=NOON + 2 * DAY + i, subscriber=phone))
    clock.now = NOON + DAY + 3600  # 13:00 the next day: outside quiet hours
    assert [await reminders.sweep(limit=3) for _ in range(4)] == [3, 3, 1, 0]
    assert len(await _sms(outbox, "reminder.sms_expiry")) == 7


async def test_qxtx_turns_every_rule_off_and_logs_each(reminders: Reminders) -> None:
    await reminders.subscribe(PHONE, 5, channel="sms", language="zh-CN")
    await reminders.subscribe(PHONE, 10, channel="sms", language="zh-CN", rule=DATA_RULE)
    await reminders.subscribe(PHONE, 3, channel="sms", language="zh-CN", rule=EXPIRY_RULE)
    assert await reminders.rules_of(PHONE) == {BALANCE_RULE: 5, DATA_RULE: 10, EXPIRY_RULE: 3}
    assert await reminders.unsubscribe(PHONE, channel="sms")
    assert await reminders.rules_of(PHONE) == {}
    outs = [(r.rule, r.action) for r in await reminders.store.consent(PHONE_C) if r.action == "out"]
    assert sorted(outs) == [(BALANCE_RULE, "out"), (EXPIRY_RULE, "out"), (DATA_RULE, "out")]
    assert not await reminders.unsubscribe(PHONE, channel="sms")


async def test_two_workers_racing_never_exceed_the_daily_cap(
    database_url: str, clock: Clock, outbox: Outbox
) -> None:
    """Two services (two stores, two thread pools: two workers) dispatch two crossings of
    each subscriber at the same moment; with a cap of one, exactly one goes out each."""
    first = make_reminders(database_url, clock, outbox, daily_cap=1)
    second = make_reminders(database_url, clock, outbox, daily_cap=1)
    phones = [f"+86138{i:08d}" for i in range(12)]
    try:
        pairs = []
        for phone in phones:
            await first.subscribe(phone, 5, channel="sms", language="zh-CN")
            await first.subscribe(phone, 10, channel="sms", language="zh-CN", rule=DATA_RULE)
            both = data(GB // 20, balance=300, subscriber=phone)  # 3元 and 5 %: two crossings
            [applied] = await first.store.apply_batch([both])
            assert applied.outcome == "fired" and len(applied.pending) == 2
            pairs.append(applied.pending)
        results = await asyncio.gather(
            *(first.dispatch(a) for a, _ in pairs), *(second.dispatch(b) for _, b in pairs)
        )
        assert sorted(results) == ["deferred"] * 12 + ["queued"] * 12
        ledger = await first.store.crossings()
        for phone in phones:
            mine = [c for c in ledger if c["subscriber"] == canonical_msisdn(phone)]
            assert sorted(c["state"] for c in mine) == ["deferred", "queued"]
            assert await first.store.sent_on(canonical_msisdn(phone), "2026-12-06") == 1
        assert len(await outbox.rows()) == 12
        # The next day the deferred ones take that day's slot, once.
        clock.now += 86400
        assert await first.sweep() == 12
        assert {c["state"] for c in await first.store.crossings()} == {"queued"}
        assert len(await outbox.rows()) == 24
    finally:
        await first.store.close()
        await second.store.close()


async def test_a_retried_dispatch_keeps_its_slot(reminders: Reminders, outbox: Outbox) -> None:
    """A worker killed after taking the slot and before queueing: the retry reuses the
    slot (no second count) and the outbox's dedupe key makes it one SMS."""
    await reminders.subscribe(PHONE, 5, channel="sms", language="zh-CN")
    [applied] = await reminders.store.apply_batch([usage("4.00")])
    [crossing] = applied.pending
    assert await reminders.store.reserve(crossing, "2026-12-06", 3) == "ok"
    assert await reminders.dispatch(crossing) == "queued"
    assert await reminders.dispatch(crossing) == "gone"
    assert await reminders.store.sent_on(PHONE_C, "2026-12-06") == 1
    assert len(await outbox.rows()) == 1
