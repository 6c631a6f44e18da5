"""Billing events as hotline reads them: a TMF654-style JSON body, checked strictly.

One body, whether it arrives over NATS JetStream or `POST /reminders/events`:

    {
      "eventId": "ocs-7781",                      # unique per event (also the Nats-Msg-Id)
      "eventTime": "2026-12-06T05:00:00.120Z",    # when billing applied it (ISO 8601, zoned)
      "eventType": "BalanceUsageEvent",           # see EVENT_TYPES
      "event": {
        "logicalResource": {"id": "+8613800138000"},    # the MSISDN (E.164)
        "remainingAmount": {"amount": "4.80", "units": "CNY"}
      }
    }

TMF654 v4 names Topup/Adjust balance create events and carries amounts as
`{amount, units}`; a usage and a low-balance indication (3GPP TS 32.299
Low-Balance-Indication) have no TMF654 event, so they take the same shape. Only the
balance *after* the event matters here: a crossing is a change of side of a threshold.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from hotline.base.privacy import canonical_msisdn

__all__ = [
    "EVENT_TYPES",
    "MAX_AMOUNT_MINOR",
    "BalanceEvent",
    "EventError",
    "event_body",
    "parse_event",
]

EVENT_TYPES = frozenset(
    {
        "TopupBalanceCreateEvent",
        "AdjustBalanceCreateEvent",
        "BalanceUsageEvent",
        "LowBalanceIndicationEvent",
        "BalanceLookupEvent",  # hotline's own: a balance it looked up anyway
    }
)
#: ±10 million 元: anything beyond is a broken feed, not a balance.
MAX_AMOUNT_MINOR = 1_000_000_000
_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class EventError(ValueError):
    """A body that is not a usable event; the message says why (no number in it)."""


@dataclass(frozen=True, slots=True)
class BalanceEvent:
    """One balance change: who, when, what kind, and the main balance after it."""

    event_id: str
    event_type: str
    at: float  # epoch seconds (UTC)
    subscriber: str  # canonical E.164
    balance_minor: int
    currency: str


def _amount_minor(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise EventError("remainingAmount.amount: a number or a decimal string")
    try:
        amount = Decimal(str(raw))
    except InvalidOperation as exc:
        raise EventError("remainingAmount.amount: not a number") from exc
    if not amount.is_finite():
        raise EventError("remainingAmount.amount: not finite")
    minor = amount * 100
    if minor != minor.to_integral_value():
        raise EventError("remainingAmount.amount: more than two decimals")
    if abs(minor) > MAX_AMOUNT_MINOR:
        raise EventError("remainingAmount.amount: out of range")
    return int(minor)


def _time(raw: Any) -> float:
    if not isinstance(raw, str) or len(raw) > 40:
        raise EventError("eventTime: an ISO 8601 time with a zone")
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise EventError("eventTime: an ISO 8601 time with a zone") from exc
    if moment.tzinfo is None:
        raise EventError("eventTime: needs a zone (Z or +08:00)")
    return moment.timestamp()


def parse_event(body: bytes | str | dict[str, Any]) -> BalanceEvent:
    """The event in `body`, or `EventError` naming the first problem."""
    if isinstance(body, dict):
        doc: Any = body
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise EventError("body is not JSON") from exc
    if not isinstance(doc, dict):
        raise EventError("body: a JSON object")
    event_id = doc.get("eventId")
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise EventError("eventId: 1-128 printable ASCII characters")
    event_type = doc.get("eventType")
    if event_type not in EVENT_TYPES:
        raise EventError(f"eventType: one of {', '.join(sorted(EVENT_TYPES))}")
    at = _time(doc.get("eventTime"))
    inner = doc.get("event")
    if not isinstance(inner, dict):
        raise EventError("event: an object")
    resource = inner.get("logicalResource")
    number = resource.get("id") if isinstance(resource, dict) else None
    if not isinstance(number, str):
        raise EventError("event.logicalResource.id: the subscriber's number")
    try:
        subscriber = canonical_msisdn(number)
    except ValueError as exc:
        raise EventError("event.logicalResource.id: not a phone number") from exc
    remaining = inner.get("remainingAmount")
    if not isinstance(remaining, dict):
        raise EventError("event.remainingAmount: {amount, units}")
    currency = remaining.get("units")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise EventError("event.remainingAmount.units: an ISO 4217 code")
    return BalanceEvent(
        event_id=event_id,
        event_type=str(event_type),
        at=at,
        subscriber=subscriber,
        balance_minor=_amount_minor(remaining.get("amount")),
        currency=currency,
    )


def event_body(event: BalanceEvent) -> bytes:
    """The JSON body of `event` (what the billing simulator and the tests publish)."""
    moment = dt.datetime.fromtimestamp(event.at, dt.UTC)
    minor = event.balance_minor
    sign = "-" if minor < 0 else ""
    amount = f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"
    return orjson.dumps(
        {
            "eventId": event.event_id,
            "eventTime": moment.isoformat().replace("+00:00", "Z"),
            "eventType": event.event_type,
            "event": {
                "logicalResource": {"id": event.subscriber, "@type": "MSISDN"},
                "remainingAmount": {"amount": amount, "units": event.currency},
            },
        }
    )
