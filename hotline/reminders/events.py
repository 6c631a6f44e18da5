"""Billing events as hotline reads them: a TMF654-style JSON body, checked strictly.

One body, whether it arrives over NATS JetStream or `POST /reminders/events`:

    {
      "eventId": "ocs-7781",                      # unique per event (also the Nats-Msg-Id)
      "eventTime": "2026-12-06T05:00:00.120Z",    # when billing applied it (ISO 8601, zoned)
      "eventType": "BalanceUsageEvent",           # see EVENT_TYPES
      "event": {
        "logicalResource": {"id": "+8613800138000"},    # the MSISDN (E.164)
        "remainingAmount": {"amount": "4.80", "units": "CNY"},   # optional with buckets
        "buckets": [                                             # optional: allowances
          {"id": "pkg-data-1", "usageType": "data",
           "remainingValue": {"amount": 512, "units": "MB"},
           "totalValue": {"amount": 10, "units": "GB"},
           "validFor": {"endDateTime": "2026-12-31T23:59:59+08:00"}}
        ]
      }
    }

TMF654 v4 names Topup/Adjust balance create events and carries amounts as
`{amount, units}`; a usage and a low-balance indication (3GPP TS 32.299
Low-Balance-Indication) have no TMF654 event, so they take the same shape. Only the
balance *after* the event matters here: a crossing is a change of side of a threshold.

`buckets` are the subscriber's data and voice allowances after the event, shaped as
TMF654 `Bucket`s (`usageType`, `remainingValue`, `validFor.endDateTime`) plus
`totalValue`, the allowance's size when granted (the share left is `remaining/total`).
Units: data `B`/`KB`/`MB`/`GB` (1024-based), voice `s`/`seconds`/`min`/`minutes`;
buckets of any other `usageType` (sms, monetary) are skipped. An event carries a
`remainingAmount`, `buckets`, or both.
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
    "ALLOWANCE_KINDS",
    "EVENT_TYPES",
    "MAX_AMOUNT_MINOR",
    "Allowance",
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
#: Allowances the bundle rules read (`data.low`, `voice.low`, `bundle.expiry`).
ALLOWANCE_KINDS = ("data", "voice")
_MAX_BUCKETS = 32
#: Base units: bytes and seconds.
_UNITS: dict[str, dict[str, int]] = {
    "data": {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3},
    "voice": {"s": 1, "seconds": 1, "min": 60, "minutes": 60},
}
#: 1 PiB, 100 years of talk: anything beyond is a broken feed.
_MAX_QUANTITY = {"data": 1024**5, "voice": 100 * 365 * 86400}
_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class EventError(ValueError):
    """A body that is not a usable event; the message says why (no number in it)."""


@dataclass(frozen=True, slots=True)
class Allowance:
    """One data or voice bucket after the event, in bytes or seconds."""

    kind: str  # data | voice
    bucket: str
    remaining: int
    total: int | None = None
    valid_until: float | None = None  # epoch seconds


@dataclass(frozen=True, slots=True)
class BalanceEvent:
    """One balance change: who, when, what kind, the main balance and allowances after it."""

    event_id: str
    event_type: str
    at: float  # epoch seconds (UTC)
    subscriber: str  # canonical E.164
    balance_minor: int | None  # None: the event says nothing about the main balance
    currency: str
    allowances: tuple[Allowance, ...] = ()


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


def _time(raw: Any, where: str = "eventTime") -> float:
    if not isinstance(raw, str) or len(raw) > 40:
        raise EventError(f"{where}: an ISO 8601 time with a zone")
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise EventError(f"{where}: an ISO 8601 time with a zone") from exc
    if moment.tzinfo is None:
        raise EventError(f"{where}: needs a zone (Z or +08:00)")
    return moment.timestamp()


def _quantity(raw: Any, kind: str, where: str) -> int:
    if not isinstance(raw, dict):
        raise EventError(f"{where}: {{amount, units}}")
    scale = _UNITS[kind].get(raw.get("units"))  # type: ignore[arg-type]
    if scale is None:
        raise EventError(f"{where}.units: one of {', '.join(_UNITS[kind])}")
    amount = raw.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        raise EventError(f"{where}.amount: a number")
    try:
        value = Decimal(str(amount)) * scale
    except InvalidOperation as exc:
        raise EventError(f"{where}.amount: a number") from exc
    if not value.is_finite() or not 0 <= value <= _MAX_QUANTITY[kind]:
        raise EventError(f"{where}.amount: out of range")
    return int(value)


def _allowances(raw: Any) -> tuple[Allowance, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > _MAX_BUCKETS:
        raise EventError(f"event.buckets: a list of at most {_MAX_BUCKETS} buckets")
    found: list[Allowance] = []
    for i, item in enumerate(raw):
        where = f"event.buckets[{i}]"
        if not isinstance(item, dict):
            raise EventError(f"{where}: an object")
        kind = item.get("usageType")
        if kind not in ALLOWANCE_KINDS:
            continue  # sms, monetary, …: no rule reads them
        ident = item.get("id")
        if not isinstance(ident, str) or not _EVENT_ID.match(ident):
            raise EventError(f"{where}.id: 1-128 printable ASCII characters")
        remaining = _quantity(item.get("remainingValue"), kind, f"{where}.remainingValue")
        total = None
        if item.get("totalValue") is not None:
            total = _quantity(item["totalValue"], kind, f"{where}.totalValue")
        until = None
        valid = item.get("validFor")
        if valid is not None:
            if not isinstance(valid, dict):
                raise EventError(f"{where}.validFor: {{endDateTime}}")
            if valid.get("endDateTime") is not None:
                until = _time(valid["endDateTime"], f"{where}.validFor.endDateTime")
        found.append(Allowance(str(kind), ident, remaining, total, until))
    return tuple(found)


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
    allowances = _allowances(inner.get("buckets"))
    remaining = inner.get("remainingAmount")
    if remaining is None and "buckets" in inner:
        return BalanceEvent(event_id, str(event_type), at, subscriber, None, "", allowances)
    if not isinstance(remaining, dict):
        raise EventError("event.remainingAmount: {amount, units} (or event.buckets)")
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
        allowances=allowances,
    )


def event_body(event: BalanceEvent) -> bytes:
    """The JSON body of `event` (what the billing simulator and the tests publish)."""
    inner: dict[str, Any] = {"logicalResource": {"id": event.subscriber, "@type": "MSISDN"}}
    minor = event.balance_minor
    if minor is not None:
        sign = "-" if minor < 0 else ""
        amount = f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"
        inner["remainingAmount"] = {"amount": amount, "units": event.currency}
    if event.allowances or minor is None:
        inner["buckets"] = [_bucket_body(a) for a in event.allowances]
    return orjson.dumps(
        {
            "eventId": event.event_id,
            "eventTime": _iso(event.at),
            "eventType": event.event_type,
            "event": inner,
        }
    )


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")


def _bucket_body(allowance: Allowance) -> dict[str, Any]:
    units = "B" if allowance.kind == "data" else "s"
    body: dict[str, Any] = {
        "id": allowance.bucket,
        "usageType": allowance.kind,
        "@type": "Bucket",
        "remainingValue": {"amount": allowance.remaining, "units": units},
    }
    if allowance.total is not None:
        body["totalValue"] = {"amount": allowance.total, "units": units}
    if allowance.valid_until is not None:
        body["validFor"] = {"endDateTime": _iso(allowance.valid_until)}
    return body
