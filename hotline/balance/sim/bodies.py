"""Bodies of the simulator's body-level faults: a valid answer, then broken on purpose."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hotline.balance.ledger import LOCAL_TZ
from hotline.balance.sim.faults import FaultRule

__all__ = ["BODY_FAULTS", "mutate_tmf", "mutate_v1"]


def _voice(doc: dict[str, Any]) -> dict[str, Any]:
    for bucket in doc["buckets"]:
        if bucket["usage_type"] == "voice":
            return dict(bucket)
    return {
        "id": "pkg-voice-x",
        "usage_type": "voice",
        "status": "active",
        "remaining": {"value": 60, "unit": "second"},
    }


def mutate_v1(rule: FaultRule, doc: dict[str, Any], now: dt.datetime) -> str | bytes:
    """The v1 body a body-level fault produces (a JSON text, or raw bytes)."""
    p = rule.params
    main = doc["main_balance"] or {"amount_minor": 0, "currency": "CNY"}
    doc["main_balance"] = main
    match rule.fault:
        case "wrong_types":
            variant = p.get("variant", "string_amount")
            if variant == "minutes_string":
                voice = _voice(doc)
                voice["remaining"] = {"value": "251:37", "unit": "second"}
                doc["buckets"] = [voice]
            elif variant == "key_casing":
                doc["AccountStatus"] = doc.pop("account_status")
                doc["MainBalance"] = doc.pop("main_balance")
            else:
                main["amount_minor"] = {
                    "string_amount": "12.50",
                    "float_amount": 12.5,
                    "prefixed_amount": "CNY 1,785.50",
                    "bool": True,
                    "null": None,
                    "object": {},
                }[variant]
        case "missing_field":
            name = p.get("field", "as_of")
            if name == "remaining":
                doc["buckets"] = [{k: v for k, v in _voice(doc).items() if k != "remaining"}]
            else:
                doc.pop(name, None)
        case "extra_field":
            doc["x_vendor_extension"] = {"tier": "gold", "points": 1200}
        case "unknown_enum":
            if p.get("target", "account") == "bucket":  # the first package's status
                for bucket in doc["buckets"][:1]:
                    bucket["status"] = "frozen_by_vendor"
            else:
                doc["account_status"] = "frozen_by_vendor"
                doc["payment_type"] = "prepaid_plus"
        case "duplicate_keys":
            return '{"account_status":"barred",' + json.dumps(doc)[1:]
        case "out_of_range":
            variant = p.get("variant", "huge")
            if variant == "huge":
                main["amount_minor"] = 10**18
            elif variant == "negative_data":
                doc["buckets"] = [
                    {
                        "id": "pkg-data-x",
                        "usage_type": "data",
                        "status": "active",
                        "remaining": {"value": -1024, "unit": "byte"},
                    }
                ]
            else:
                voice = _voice(doc)
                voice["valid_until"] = "1970-01-01T08:00:00+08:00"
                doc["buckets"] = [voice]
        case "time_formats":
            variant = p.get("variant", "no_offset")
            local = now.astimezone(LOCAL_TZ)
            doc["as_of"] = {
                "no_offset": local.replace(tzinfo=None).isoformat(timespec="seconds"),
                "epoch_s": int(now.timestamp()),
                "epoch_ms": int(now.timestamp() * 1000),
                "compact": local.strftime("%Y%m%d%H%M%S"),
            }[variant]
        case "business_error_200":
            return json.dumps(
                {
                    "code": "INTERNAL_ERROR",
                    "title": "internal error",
                    "status": 500,
                    "request_id": doc["request_id"],
                }
            )
        case "stale_as_of" | "future_as_of":
            sign = -1 if rule.fault == "stale_as_of" else 1
            moment = now + dt.timedelta(seconds=sign * p.get("seconds", 3600))
            doc["as_of"] = moment.astimezone(LOCAL_TZ).isoformat(timespec="milliseconds")
    return json.dumps(doc, ensure_ascii=False)


def mutate_tmf(rule: FaultRule, items: list[dict[str, Any]]) -> str:
    """The TMF654 body a body-level fault produces."""
    p = rule.params
    if not items or items[0]["usageType"] != "monetary":
        items.insert(
            0,
            {
                "id": "bkt-main",
                "usageType": "monetary",
                "status": "active",
                "remainingValue": {"amount": 0.0, "units": "CNY"},
            },
        )
    money = items[0]["remainingValue"]
    match rule.fault:
        case "wrong_types":
            variant = p.get("variant", "string_amount")
            money["amount"] = {
                "string_amount": "12.50",
                "float_amount": 12.5,
                "prefixed_amount": "CNY 1,785.50",
                "bool": True,
                "null": None,
                "object": {},
                "minutes_string": "251:37",
                "key_casing": None,
            }[variant]
        case "missing_field":
            del items[0]["remainingValue"]
        case "extra_field":
            items[0]["x_vendor_extension"] = {"tier": "gold"}
        case "unknown_enum":  # the money bucket's status, or the first package's
            target = 1 if p.get("target", "money") == "bucket" and len(items) > 1 else 0
            items[target]["status"] = "frozen_by_vendor"
        case "duplicate_keys":
            return '[{"id":"bkt-dup",' + json.dumps(items)[2:]
        case "out_of_range":
            variant = p.get("variant", "huge")
            if variant == "huge":
                money["amount"] = 1e16
            elif variant == "negative_data":
                items.append(
                    {
                        "id": "bkt-data-x",
                        "usageType": "data",
                        "status": "active",
                        "remainingValue": {"amount": -5, "units": "MB"},
                    }
                )
            else:
                items[0]["validFor"] = {"endDateTime": "1970-01-01T08:00:00+08:00"}
        case "time_formats":
            items[0]["validFor"] = {"endDateTime": "20250601101530"}
        case "business_error_200":
            return json.dumps({"code": "500", "reason": "Internal error"})
    return json.dumps(items, ensure_ascii=False)


BODY_FAULTS = frozenset(
    {
        "wrong_types",
        "missing_field",
        "extra_field",
        "unknown_enum",
        "duplicate_keys",
        "out_of_range",
        "time_formats",
        "business_error_200",
        "stale_as_of",
        "future_as_of",
    }
)
