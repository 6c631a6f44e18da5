"""Upstream answer → `BalanceSnapshot`, or an error: the validation pipeline (reference §7.4).

Pure functions, no I/O. Every failure is `InvalidUpstreamAnswer` whose message is a
*structural* fingerprint (field path and type), never a value, so it can be logged.

1. transport: status class, JSON content type, size cap, strict UTF-8;
2. strict JSON: no NaN/Infinity, no duplicate keys, numbers with a fraction as Decimal;
3. envelope: a 200 carrying a business error is an error;
4. per-field coercion by dialect (v1 is strict integers; TMF654 accepts decimals and units);
5. the strict pydantic model;
6. sanity: |main| bound, currency allow-list, dates, `as_of` skew and age.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError

from hotline.balance.model import BalanceSnapshot, Bucket, Quantity
from hotline.base.errors import InvalidUpstreamAnswer, UpstreamError, UpstreamNotFound
from hotline.base.values import Money
from hotline.resilience.faults import UpstreamRefused

__all__ = [
    "Limits",
    "decode_json",
    "error_for_status",
    "parse_tmf654",
    "parse_v1",
]

JSON_TYPES = frozenset({"application/json", "application/problem+json"})
# ASCII digits throughout: `\d` admits ١ and １, which Decimal() would read as a balance.
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_DECIMAL = re.compile(r"^-?[0-9]{1,19}(\.[0-9]{1,12})?$")
_SECONDS = re.compile(r"^[0-9]{1,9}$")  # ASCII: str.isdigit admits ², which int() refuses
_CODE = re.compile(r"^[A-Z][A-Z_]{1,39}$|^[0-9]{1,4}$")
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_FOREVER_YEAR = 9999
_QUANTITY_MAX = 2**63 - 1
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Limits:
    """Sanity bounds of one provider (from `BalanceSettings`)."""

    max_main_minor: int = 10**9  # 10^7 元 in fen
    currencies: tuple[str, ...] = ("CNY",)
    max_future_skew: float = 60.0
    max_age: float = 900.0
    gb_bytes: int = 1024**3


def _bad(path: str, problem: str) -> NoReturn:
    raise InvalidUpstreamAnswer(f"{path}: {problem}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- 1 + 2: transport and strict JSON ------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    _bad("$", f"non-finite number {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _bad("$", "duplicate key in an object")
        result[key] = value
    return result


def decode_json(body: bytes, content_type: str | None, charset: str | None, max_bytes: int) -> Any:
    """Strict JSON of a body that says it is JSON, UTF-8, and fits the cap."""
    if len(body) > max_bytes:
        _bad("$", f"body longer than {max_bytes} bytes")
    if (content_type or "").lower() not in JSON_TYPES:
        _bad("$", f"content type is not JSON ({(content_type or 'none')[:40]})")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        _bad("$", "charset is not UTF-8")
    if not body:
        _bad("$", "empty body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        _bad("$", "body is not valid UTF-8")
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
            parse_float=Decimal,
        )
    except json.JSONDecodeError as exc:
        _bad("$", f"invalid JSON at offset {exc.pos}")
    except RecursionError:
        _bad("$", "JSON nested too deeply")


# --- error statuses --------------------------------------------------------------------


def _retry_after(header: str | None) -> float | None:
    if header is None or not _SECONDS.match(header.strip()):
        return None
    return float(min(int(header.strip()), 3600))


def error_for_status(status: int, doc: Any, retry_after: str | None) -> UpstreamError:
    """The error a non-200 answer stands for (problem+json `code` if readable)."""
    code = ""
    if isinstance(doc, Mapping) and isinstance(doc.get("code"), str):
        # Only a code-shaped code: it ends up in logs, so no echoed number may pass.
        code = doc["code"] if _CODE.match(doc["code"]) else "UNRECOGNISED_CODE"
    code = code or f"HTTP_{status}"
    if status == 404 or code in ("SUBSCRIBER_NOT_FOUND", "BALANCE_NOT_AVAILABLE"):
        return UpstreamNotFound(f"upstream: {code}")
    if status == 429:
        after = _retry_after(retry_after)
        return UpstreamRefused(
            429, code, retryable=after is not None, breaker=False, retry_after=after
        )
    if status >= 500:
        return UpstreamRefused(
            status, code, retryable=True, breaker=True, retry_after=_retry_after(retry_after)
        )
    return UpstreamRefused(status, code, retryable=False, breaker=False)


# --- 4: field coercion -----------------------------------------------------------------


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _bad(path, f"expected object, got {_kind(value)}")
    return value


def _str(value: Any, path: str, max_len: int = 64) -> str:
    if not isinstance(value, str):
        _bad(path, f"expected string, got {_kind(value)}")
    if not value or len(value) > max_len:
        _bad(path, f"string length out of range 1..{max_len}")
    return value


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _bad(path, f"expected integer, got {_kind(value)}")
    return value


def _decimal(value: Any, path: str) -> Decimal:
    """TMF654 amounts: integer, JSON number, or a plain decimal string."""
    if isinstance(value, bool) or value is None:
        _bad(path, f"expected number, got {_kind(value)}")
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, str) and _DECIMAL.match(value.strip()):
        number = Decimal(value.strip())
    else:
        _bad(path, f"expected number, got {_kind(value)}")
    if not number.is_finite() or abs(number) >= Decimal(2**63):
        _bad(path, "number out of range")
    return number


def _timestamp(value: Any, path: str, *, nullable: bool = True) -> dt.datetime | None:
    if value is None and nullable:
        return None
    text = _str(value, path)
    if not _RFC3339.match(text):
        _bad(path, "timestamp is not RFC 3339 with an offset")
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        _bad(path, "timestamp out of range")
    if moment.year >= _FOREVER_YEAR:
        return None  # far-future sentinel: no expiry (长期有效)
    if moment < _EARLIEST:
        _bad(path, "timestamp before 2000")
    return moment


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable()).strip()
    return cleaned[:32] or None


def _enum(value: Any, allowed: tuple[str, ...], fallback: str) -> str:
    return value if isinstance(value, str) and value in allowed else fallback


_USAGE = ("monetary", "voice", "data", "sms", "other")
_STATUS = ("active", "suspended", "expired")
_ACCOUNT = ("active", "suspended", "barred", "inactive", "unknown")
_PAYMENT = ("prepaid", "postpaid", "hybrid", "unknown")
_UNIT_OF_USAGE = {"data": "byte", "voice": "second", "sms": "message"}


def _money_v1(value: Any, path: str, limits: Limits) -> Money | None:
    if value is None:
        return None
    obj = _obj(value, path)
    minor = _int(obj.get("amount_minor"), f"{path}.amount_minor")
    currency = _str(obj.get("currency"), f"{path}.currency", 3)
    if currency not in limits.currencies:
        _bad(f"{path}.currency", "currency not allowed")
    if abs(minor) > limits.max_main_minor:
        _bad(f"{path}.amount_minor", "amount out of range")
    return Money(minor, currency)


def _quantity_v1(value: Any, path: str, usage: str) -> Quantity:
    obj = _obj(value, path)
    amount = _int(obj.get("value"), f"{path}.value")
    unit = _str(obj.get("unit"), f"{path}.unit", 16)
    if not 0 <= amount <= _QUANTITY_MAX:
        _bad(f"{path}.value", "quantity out of range")
    expected = _UNIT_OF_USAGE.get(usage)
    if unit not in ("byte", "second", "message", "unit") or (expected and unit != expected):
        _bad(f"{path}.unit", "unit does not fit the usage type")
    return Quantity(value=amount, unit=unit)  # type: ignore[arg-type]


def _bucket_v1(value: Any, path: str, limits: Limits) -> Bucket:
    obj = _obj(value, path)
    usage = _enum(obj.get("usage_type"), _USAGE, "other")
    monetary = usage == "monetary"

    def amount(field: str) -> Money | Quantity | None:
        raw = obj.get(field)
        if raw is None and field == "total":
            return None
        if monetary:
            return _money_v1(raw, f"{path}.{field}", limits)
        return _quantity_v1(raw, f"{path}.{field}", usage)

    remaining = amount("remaining")
    if remaining is None:
        _bad(f"{path}.remaining", "missing")
    return _model(
        lambda: Bucket(
            id=_str(obj.get("id"), f"{path}.id"),
            usage_type=usage,  # type: ignore[arg-type]
            name=_name(obj.get("name")),
            remaining=remaining,
            total=amount("total"),
            status=_enum(obj.get("status"), _STATUS, "unknown"),  # type: ignore[arg-type]
            valid_from=_timestamp(obj.get("valid_from"), f"{path}.valid_from"),
            valid_until=_timestamp(obj.get("valid_until"), f"{path}.valid_until"),
            is_shared=obj.get("is_shared") is True,
        ),
        path,
    )


def _model(build: Callable[[], _T], path: str) -> _T:
    try:
        return build()
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "model"
        _bad(path, f"fails the model at {where}")


def _as_of(value: Any, fetched_at: dt.datetime, limits: Limits) -> dt.datetime:
    as_of = _timestamp(value, "$.as_of", nullable=False)
    if as_of is None:
        _bad("$.as_of", "far-future sentinel")
    skew = (as_of - fetched_at).total_seconds()
    if skew > limits.max_future_skew:
        _bad("$.as_of", "in the future")
    if -skew > limits.max_age:
        _bad("$.as_of", "older than max_stale")
    return as_of


# --- 3 + 5 + 6: dialects -----------------------------------------------------------------


def parse_v1(doc: Any, *, token: str, fetched_at: dt.datetime, limits: Limits) -> BalanceSnapshot:
    """A "balance-query v1" 200 body (reference §7.2)."""
    obj = _obj(doc, "$")
    for marker in ("code", "error", "error_code", "errcode"):
        if marker in obj:
            _bad(f"$.{marker}", "business error in a 200 answer")
    buckets_raw = obj.get("buckets", [])
    if not isinstance(buckets_raw, list):
        _bad("$.buckets", f"expected array, got {_kind(buckets_raw)}")
    if len(buckets_raw) > 64:
        _bad("$.buckets", "too many buckets")
    buckets = tuple(_bucket_v1(b, f"$.buckets[{i}]", limits) for i, b in enumerate(buckets_raw))
    if "account_status" not in obj:
        _bad("$.account_status", "missing")
    status = _enum(_str(obj.get("account_status"), "$.account_status", 32), _ACCOUNT, "unknown")
    main = _money_v1(obj.get("main_balance"), "$.main_balance", limits)
    credit = _money_v1(obj.get("credit_limit"), "$.credit_limit", limits)
    as_of = _as_of(obj.get("as_of"), fetched_at, limits)
    warnings = obj.get("warnings", [])
    return _model(
        lambda: BalanceSnapshot(
            subscriber_token=token,
            account_status=status,  # type: ignore[arg-type]
            payment_type=_enum(obj.get("payment_type"), _PAYMENT, "unknown"),  # type: ignore[arg-type]
            main_balance=main,
            credit_limit=credit,
            buckets=buckets,
            as_of=as_of,
            fetched_at=fetched_at,
            provider="http",
            warnings=tuple(w[:40] for w in warnings if isinstance(w, str))[:8]
            if isinstance(warnings, list)
            else (),
        ),
        "$",
    )


# TMF654 units (case-insensitive) → (kind, factor into base unit). Money factors give fen.
def _tmf_units(gb_bytes: int) -> dict[str, tuple[str, Decimal]]:
    mb = Decimal(gb_bytes) / 1024 if gb_bytes == 1024**3 else Decimal(10**6)
    kb = mb / 1024 if gb_bytes == 1024**3 else Decimal(1000)
    return {
        "cny": ("money", Decimal(100)),
        "rmb": ("money", Decimal(100)),
        "元": ("money", Decimal(100)),
        "yuan": ("money", Decimal(100)),
        "fen": ("money", Decimal(1)),
        "分": ("money", Decimal(1)),
        "cents": ("money", Decimal(1)),
        "li": ("money", Decimal("0.1")),
        "厘": ("money", Decimal("0.1")),
        "gb": ("byte", Decimal(gb_bytes)),
        "g": ("byte", Decimal(gb_bytes)),
        "mb": ("byte", mb),
        "m": ("byte", mb),
        "kb": ("byte", kb),
        "bytes": ("byte", Decimal(1)),
        "byte": ("byte", Decimal(1)),
        "b": ("byte", Decimal(1)),
        "octets": ("byte", Decimal(1)),
        "minutes": ("second", Decimal(60)),
        "minute": ("second", Decimal(60)),
        "min": ("second", Decimal(60)),
        "seconds": ("second", Decimal(1)),
        "second": ("second", Decimal(1)),
        "s": ("second", Decimal(1)),
        "sec": ("second", Decimal(1)),
        "sms": ("message", Decimal(1)),
        "messages": ("message", Decimal(1)),
        "message": ("message", Decimal(1)),
        "msg": ("message", Decimal(1)),
        "条": ("message", Decimal(1)),
    }


def _floor(number: Decimal) -> int:
    try:
        return int(number.to_integral_value(rounding=ROUND_FLOOR))
    except InvalidOperation:
        _bad("$", "number out of range")


def _bucket_tmf(value: Any, path: str, limits: Limits) -> Bucket:
    obj = _obj(value, path)
    usage = _enum(obj.get("usageType"), _USAGE, "other")
    units = _tmf_units(limits.gb_bytes)

    def amount(field: str) -> Money | Quantity | None:
        raw = obj.get(field)
        if raw is None:
            return None
        quantity = _obj(raw, f"{path}.{field}")
        number = _decimal(quantity.get("amount"), f"{path}.{field}.amount")
        unit_name = _str(quantity.get("units"), f"{path}.{field}.units", 16).strip().lower()
        kind, factor = units.get(unit_name, ("unknown", Decimal(0)))
        if usage == "monetary":
            if kind != "money":
                _bad(f"{path}.{field}.units", "not a money unit")
            minor = _floor(number * factor)
            if abs(minor) > limits.max_main_minor:
                _bad(f"{path}.{field}.amount", "amount out of range")
            currency = "CNY"
            if currency not in limits.currencies:
                _bad(f"{path}.{field}.units", "currency not allowed")
            return Money(minor, currency)
        expected = _UNIT_OF_USAGE.get(usage)
        if kind in ("money", "unknown") or (expected and kind != expected):
            _bad(f"{path}.{field}.units", "unit does not fit the usage type")
        if number < 0:
            _bad(f"{path}.{field}.amount", "negative quantity")
        base = _floor(number * factor)
        if base > _QUANTITY_MAX:
            _bad(f"{path}.{field}.amount", "quantity out of range")
        return Quantity(value=base, unit=kind)  # type: ignore[arg-type]

    remaining = amount("remainingValue")
    if remaining is None:
        _bad(f"{path}.remainingValue", "missing")
    valid_for = obj.get("validFor")
    period = _obj(valid_for, f"{path}.validFor") if valid_for is not None else {}
    raw_id = obj.get("id")
    return _model(
        lambda: Bucket(
            id=_str(raw_id, f"{path}.id"),
            usage_type=usage,  # type: ignore[arg-type]
            name=_name(obj.get("name")),
            remaining=remaining,
            total=None,
            status=_enum(obj.get("status"), _STATUS, "unknown"),  # type: ignore[arg-type]
            valid_from=_timestamp(period.get("startDateTime"), f"{path}.validFor.startDateTime"),
            valid_until=_timestamp(period.get("endDateTime"), f"{path}.validFor.endDateTime"),
            is_shared=obj.get("isShared") is True,
        ),
        path,
    )


def parse_tmf654(
    doc: Any, *, token: str, fetched_at: dt.datetime, limits: Limits
) -> BalanceSnapshot:
    """A TMF654 v4 `GET /bucket` list (reference §7.3); the main balance is the sum of
    the active monetary buckets. TMF654 has no account status or `as_of`."""
    if isinstance(doc, Mapping):
        _bad("$", "business error in a 200 answer" if "code" in doc else "expected array")
    if not isinstance(doc, list):
        _bad("$", f"expected array, got {_kind(doc)}")
    if not doc:
        raise UpstreamNotFound("upstream: no buckets for this subscriber")
    if len(doc) > 64:
        _bad("$", "too many buckets")
    buckets = tuple(_bucket_tmf(b, f"$[{i}]", limits) for i, b in enumerate(doc))
    money = [b for b in buckets if b.usage_type == "monetary"]
    monetary = [
        b.remaining for b in money if b.status == "active" and isinstance(b.remaining, Money)
    ]
    main = Money(sum(m.minor for m in monetary), monetary[0].currency) if monetary else None
    if any(b.status == "unknown" for b in money):
        main = None  # a sum without the buckets we cannot read would understate it
    if main is not None and abs(main.minor) > limits.max_main_minor:
        _bad("$", "main balance out of range")
    return _model(
        lambda: BalanceSnapshot(
            subscriber_token=token,
            account_status="unknown",
            main_balance=main,
            # Monetary buckets are summed into `main_balance`; one of unknown status stays,
            # so an answer of nothing else is still a (sparse) answer, not an invalid one.
            buckets=tuple(
                b for b in buckets if b.usage_type != "monetary" or b.status == "unknown"
            ),
            as_of=fetched_at,
            fetched_at=fetched_at,
            provider="http",
        ),
        "$",
    )
