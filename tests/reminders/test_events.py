"""The event body: what is accepted, and a clear reason for what is not."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from hotline.reminders.events import BalanceEvent, EventError, event_body, parse_event
from hotline.reminders.quiet import QuietHours
from tests.reminders.conftest import ZONE


def _body(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "eventId": "ocs-1",
        "eventTime": "2026-12-06T05:00:00.120Z",
        "eventType": "BalanceUsageEvent",
        "event": {
            "logicalResource": {"id": "+8613800138000"},
            "remainingAmount": {"amount": "4.80", "units": "CNY"},
        },
    }
    doc.update(changes)
    return doc


def test_a_tmf654_style_body_reads() -> None:
    event = parse_event(orjson.dumps(_body()))
    assert event.subscriber == "13800138000"
    assert event.balance_minor == 480
    assert event.at == dt.datetime(2026, 12, 6, 5, 0, 0, 120000, dt.UTC).timestamp()
    assert parse_event(event_body(event)) == event


def test_numbers_and_debts_read() -> None:
    inner = {
        "logicalResource": {"id": "8613800138000"},
        "remainingAmount": {"amount": -3.2, "units": "CNY"},
    }
    assert parse_event(_body(event=inner)).balance_minor == -320


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1]", "a JSON object"),
        (orjson.dumps(_body(eventId="")), "eventId"),
        (orjson.dumps(_body(eventType="Hello")), "eventType"),
        (orjson.dumps(_body(eventTime="yesterday")), "eventTime"),
        (orjson.dumps(_body(eventTime="2026-12-06T05:00:00")), "zone"),
        (orjson.dumps(_body(event=[])), "event: an object"),
        (orjson.dumps(_body(event={"remainingAmount": {}})), "logicalResource.id"),
        (
            orjson.dumps(_body(event={"logicalResource": {"id": "hello"}})),
            "not a phone number",
        ),
        (
            orjson.dumps(
                _body(
                    event={
                        "logicalResource": {"id": "+8613800138000"},
                        "remainingAmount": {"amount": "1e12", "units": "CNY"},
                    }
                )
            ),
            "out of range",
        ),
        (
            orjson.dumps(
                _body(
                    event={
                        "logicalResource": {"id": "+8613800138000"},
                        "remainingAmount": {"amount": "1.005", "units": "CNY"},
                    }
                )
            ),
            "two decimals",
        ),
        (
            orjson.dumps(
                _body(
                    event={
                        "logicalResource": {"id": "+8613800138000"},
                        "remainingAmount": {"amount": "NaN", "units": "CNY"},
                    }
                )
            ),
            "not finite",
        ),
        (
            orjson.dumps(
                _body(
                    event={
                        "logicalResource": {"id": "+8613800138000"},
                        "remainingAmount": {"amount": True, "units": "CNY"},
                    }
                )
            ),
            "a number",
        ),
        (
            orjson.dumps(
                _body(
                    event={
                        "logicalResource": {"id": "+8613800138000"},
                        "remainingAmount": {"amount": "1", "units": "yuan"},
                    }
                )
            ),
            "ISO 4217",
        ),
    ],
)
def test_bad_bodies_say_why_without_the_number(body: bytes, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(body)
    assert reason in str(caught.value)
    assert "13800138000" not in str(caught.value)


def test_quiet_hours_span_midnight() -> None:
    quiet = QuietHours(dt.time(21, 0), dt.time(8, 0), ZONE)

    def at(day: int, hour: int, minute: int = 0) -> float:
        return dt.datetime(2026, 12, day, hour, minute, tzinfo=ZONE).timestamp()

    assert not quiet.is_quiet(at(6, 20, 59))
    assert quiet.next_open(at(6, 21, 0)) == at(7, 8)
    assert quiet.next_open(at(7, 7, 59)) == at(7, 8)
    assert quiet.next_open(at(7, 8)) == at(7, 8)
    assert quiet.next_day_open(at(6, 12)) == at(7, 8)
    assert quiet.day_of(at(6, 23, 59)) == "2026-12-06"
    day = QuietHours(dt.time(12, 0), dt.time(14, 0), ZONE)
    assert day.is_quiet(at(6, 13)) and not day.is_quiet(at(6, 14))
    assert not QuietHours(dt.time(0, 0), dt.time(0, 0), ZONE).is_quiet(at(6, 3))


def test_event_is_hashable_value() -> None:
    event = BalanceEvent("a", "BalanceUsageEvent", 1.0, "+8613800138000", 1, "CNY")
    assert {event, event} == {event}
