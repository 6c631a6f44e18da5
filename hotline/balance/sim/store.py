"""The simulator's subscribers: a YAML seed (or the ledger's demo rows) and their wire forms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from hotline.balance.ledger import BUCKET_UNITS, LOCAL_TZ, demo_subscribers
from hotline.balance.msisdn import canonical_msisdn

__all__ = ["SimBucket", "SimSubscriber", "load_seed", "subscriber_from_doc"]

_NAMES = {"data": "国内通用流量", "voice": "国内通话", "sms": "短信"}


@dataclass(slots=True)
class SimBucket:
    usage_type: str
    remaining: int
    valid_until: dt.datetime | None = None
    total: int | None = None


@dataclass(slots=True)
class SimSubscriber:
    status: str = "active"
    main_minor: int | None = 0
    currency: str = "CNY"
    buckets: list[SimBucket] = field(default_factory=list)

    def v1(self, as_of: dt.datetime, request_id: str) -> dict[str, Any]:
        """The "balance-query v1" 200 body."""
        return {
            "request_id": request_id,
            "as_of": as_of.astimezone(LOCAL_TZ).isoformat(timespec="milliseconds"),
            "account_status": self.status,
            "payment_type": "prepaid",
            "main_balance": None
            if self.main_minor is None
            else {"amount_minor": self.main_minor, "currency": self.currency},
            "credit_limit": None,
            "buckets": [
                {
                    "id": f"pkg-{b.usage_type}-{i}",
                    "usage_type": b.usage_type,
                    "name": _NAMES.get(b.usage_type, "套餐"),
                    "status": "active",
                    "remaining": {"value": b.remaining, "unit": BUCKET_UNITS[b.usage_type]},
                    "total": None
                    if b.total is None
                    else {"value": b.total, "unit": BUCKET_UNITS[b.usage_type]},
                    "valid_until": None
                    if b.valid_until is None
                    else b.valid_until.astimezone(LOCAL_TZ).isoformat(),
                }
                for i, b in enumerate(self.buckets, 1)
            ],
        }

    def tmf654(self) -> list[dict[str, Any]]:
        """TMF654 v4 `Bucket[]`: money as a float-ish decimal in CNY, data in MB."""
        items: list[dict[str, Any]] = []
        if self.main_minor is not None:
            items.append(
                {
                    "id": "bkt-main",
                    "name": "通用账户",
                    "usageType": "monetary",
                    "status": "active",
                    "isShared": False,
                    "@type": "Bucket",
                    "remainingValue": {
                        "amount": float(Decimal(self.main_minor) / 100),
                        "units": "CNY",
                    },
                }
            )
        for i, b in enumerate(self.buckets, 1):
            if b.usage_type == "data":
                amount, units = Decimal(b.remaining) / 1024**2, "MB"
            elif b.usage_type == "voice" and b.remaining % 60 == 0:
                amount, units = Decimal(b.remaining // 60), "minutes"
            elif b.usage_type == "voice":
                amount, units = Decimal(b.remaining), "seconds"
            else:
                amount, units = Decimal(b.remaining), "sms"
            item: dict[str, Any] = {
                "id": f"bkt-{b.usage_type}-{i}",
                "name": _NAMES.get(b.usage_type, "套餐"),
                "usageType": b.usage_type,
                "status": "active",
                "@type": "Bucket",
                "remainingValue": {"amount": float(amount), "units": units},
            }
            if b.valid_until is not None:
                item["validFor"] = {"endDateTime": b.valid_until.astimezone(LOCAL_TZ).isoformat()}
            items.append(item)
        return items


def _moment(value: Any, where: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time(23, 59, 59))
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{where}: not an ISO date or date-time") from exc
    else:
        raise ValueError(f"{where}: not an ISO date or date-time")
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: expected an integer")
    return value


def subscriber_from_doc(doc: Mapping[str, Any], where: str = "subscriber") -> SimSubscriber:
    """One subscriber from YAML/JSON: `{status, main_minor, currency, buckets: [...]}`."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"{where}: expected a mapping")
    unknown = set(doc) - {"status", "main_minor", "currency", "buckets"}
    if unknown:
        raise ValueError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    status = doc.get("status", "active")
    if status not in ("active", "suspended", "barred", "inactive"):
        raise ValueError(f"{where}.status: one of active, suspended, barred, inactive")
    main = doc.get("main_minor", 0)
    buckets = []
    for i, raw in enumerate(doc.get("buckets") or []):
        at = f"{where}.buckets[{i}]"
        if not isinstance(raw, Mapping) or raw.get("usage_type") not in BUCKET_UNITS:
            raise ValueError(f"{at}: needs usage_type data, voice or sms")
        buckets.append(
            SimBucket(
                usage_type=str(raw["usage_type"]),
                remaining=_int(raw.get("remaining"), f"{at}.remaining"),
                valid_until=_moment(raw.get("valid_until"), f"{at}.valid_until"),
                total=None if raw.get("total") is None else _int(raw["total"], f"{at}.total"),
            )
        )
    return SimSubscriber(
        status=str(status),
        main_minor=None if main is None else _int(main, f"{where}.main_minor"),
        currency=str(doc.get("currency", "CNY")),
        buckets=buckets,
    )


def load_seed(path: Path | None, today: dt.date) -> dict[str, SimSubscriber]:
    """Subscribers by canonical MSISDN: from `path` (`subscribers: {msisdn: {...}}`), or
    the ledger's demo subscribers when no seed file is given."""
    if path is None:
        return {
            rec.msisdn: SimSubscriber(
                status=rec.status,
                main_minor=rec.main_minor,
                currency=rec.currency,
                buckets=[SimBucket(b.usage_type, b.remaining, b.valid_until) for b in rec.buckets],
            )
            for rec in demo_subscribers(today)
        }
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, Mapping) or not isinstance(doc.get("subscribers"), Mapping):
        raise ValueError(f"{path}: expected `subscribers:` mapping MSISDN to a subscriber")
    return {
        canonical_msisdn(str(number)): subscriber_from_doc(entry, f"{path}: {number}")
        for number, entry in doc["subscribers"].items()
    }
