"""Pure parts: the snapshot model, the validation pipeline, signing, fault rules."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hotline.balance.model import BalanceSnapshot, Bucket, Quantity
from hotline.balance.parse import Limits, decode_json, error_for_status, parse_tmf654, parse_v1
from hotline.balance.signing import (
    auth_headers,
    parse_authorization,
    string_to_sign,
    verify_signature,
)
from hotline.balance.sim.faults import FaultTable
from hotline.base.errors import InvalidUpstreamAnswer, UpstreamNotFound
from hotline.base.values import Money
from hotline.resilience.faults import UpstreamRefused

NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
LIMITS = Limits()


def v1(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "as_of": "2026-11-24T10:00:00.000+08:00",
        "account_status": "active",
        "main_balance": {"amount_minor": 1250, "currency": "CNY"},
        "buckets": [
            {
                "id": "d",
                "usage_type": "data",
                "status": "active",
                "remaining": {"value": 1024, "unit": "byte"},
                "valid_until": "9999-12-31T23:59:59+08:00",
            }
        ],
    }
    doc.update(changes)
    return doc


def test_snapshot_model_is_strict_and_exposes_values_money() -> None:
    snap = parse_v1(v1(), token="t", fetched_at=NOW, limits=LIMITS)
    assert type(snap.main_balance) is Money
    assert snap.buckets[0].valid_until is None  # 9999 sentinel = no expiry
    assert snap.as_stale().stale is True and snap.stale is False
    with pytest.raises(ValidationError):
        BalanceSnapshot(
            subscriber_token="t",
            account_status="active",
            main_balance=None,
            buckets=(),
            as_of=NOW,
            fetched_at=NOW,
            provider="x",
        )
    with pytest.raises(ValidationError):  # naive timestamps are refused
        snap.model_validate({**snap.model_dump(), "as_of": NOW.replace(tzinfo=None)})
    with pytest.raises(ValidationError):
        Bucket(id="m", usage_type="monetary", remaining=Quantity(value=1, unit="unit"))
    with pytest.raises(ValidationError):
        Bucket(id="d", usage_type="data", remaining=Quantity(value=1, unit="second"))
    with pytest.raises(ValidationError):
        Quantity(value=1.5, unit="byte")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "content_type", "charset"),
    [
        (b'{"a":1,"a":2}', "application/json", None),
        (b'{"a":NaN}', "application/json", None),
        (b'{"a":Infinity}', "application/json", None),
        (b"{}", "text/html", None),
        (b"{}", "application/json", "gbk"),
        (b"", "application/json", None),
        (b'{"a":"\xff"}', "application/json", None),
        (b"[" * 5000 + b"]" * 5000, "application/json", None),
    ],
)
def test_decode_json_rejects(body: bytes, content_type: str, charset: str | None) -> None:
    with pytest.raises(InvalidUpstreamAnswer):
        decode_json(body, content_type, charset, 65536)


def test_decode_json_size_cap_and_decimals() -> None:
    with pytest.raises(InvalidUpstreamAnswer):
        decode_json(b"[" + b"1," * 40000 + b"1]", "application/json", None, 65536)
    assert str(decode_json(b"[0.29]", "application/json", "utf-8", 100)[0]) == "0.29"


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (404, "SUBSCRIBER_NOT_FOUND", UpstreamNotFound),
        (409, "BALANCE_NOT_AVAILABLE", UpstreamNotFound),
        (400, "INVALID_REQUEST", UpstreamRefused),
        (503, "UNAVAILABLE", UpstreamRefused),
    ],
)
def test_error_for_status(status: int, code: str, kind: type[Exception]) -> None:
    assert isinstance(error_for_status(status, {"code": code}, None), kind)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 99999 ", 3600.0), ("²", None), ("1" * 5000, None), ("-1", None), (None, None)],
)
def test_retry_after_is_ascii_seconds_or_nothing(header: str | None, seconds: float | None) -> None:
    error = error_for_status(429, {"code": "RATE_LIMITED"}, header)
    assert error.retry_after == seconds  # type: ignore[attr-defined]


def test_tmf654_units_and_rounding() -> None:
    doc = [
        {
            "id": "m",
            "usageType": "monetary",
            "status": "active",
            "remainingValue": {"amount": Decimal("12.509"), "units": "CNY"},
        },
        {
            "id": "m2",
            "usageType": "monetary",
            "status": "active",
            "remainingValue": {"amount": 1005, "units": "厘"},
        },
        {
            "id": "d",
            "usageType": "data",
            "status": "active",
            "remainingValue": {"amount": "1.5", "units": "GB"},
        },
        {
            "id": "v",
            "usageType": "voice",
            "status": "active",
            "remainingValue": {"amount": 90, "units": "minutes"},
        },
    ]
    snap = parse_tmf654(doc, token="t", fetched_at=NOW, limits=LIMITS)
    assert snap.main_balance == Money(1250 + 100)  # floors: 12.509 → 12.50, 1005 厘 → 1.00
    assert snap.bucket("data").remaining.value == 1536 * 1024**2  # type: ignore[union-attr]
    assert snap.bucket("voice").remaining.value == 5400  # type: ignore[union-attr]
    with pytest.raises(UpstreamNotFound):
        parse_tmf654([], token="t", fetched_at=NOW, limits=LIMITS)
    with pytest.raises(InvalidUpstreamAnswer):
        parse_tmf654(
            [{**doc[2], "remainingValue": {"amount": 1, "units": "parsecs"}}],
            token="t",
            fetched_at=NOW,
            limits=LIMITS,
        )


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(amount=_json_values, value=_json_values, as_of=_json_values)
def test_fuzzed_fields_give_a_snapshot_or_invalid_never_a_crash(
    amount: Any, value: Any, as_of: Any
) -> None:
    doc = v1(as_of=as_of)
    doc["main_balance"] = {"amount_minor": amount, "currency": "CNY"}
    doc["buckets"][0]["remaining"]["value"] = value
    try:
        snap = parse_v1(doc, token="t", fetched_at=NOW, limits=LIMITS)
    except InvalidUpstreamAnswer as exc:
        assert "12" not in str(exc) or "$" in str(exc)
        return
    assert isinstance(snap.main_balance, Money)
    assert isinstance(snap.main_balance.minor, int) and not isinstance(amount, bool)


@settings(max_examples=200, deadline=None)
@given(amount=_json_values, units=st.sampled_from(["CNY", "GB", "MB", "minutes", "sms", "x"]))
def test_fuzzed_tmf654_amounts(amount: Any, units: str) -> None:
    # "active": a bucket without a status is of unknown status, and its amount never
    # reaches `main_balance` (before, it counted as suspended and every example raised).
    doc = [
        {
            "id": "m",
            "usageType": "monetary",
            "status": "active",
            "remainingValue": {"amount": amount, "units": units},
        }
    ]
    try:
        snap = parse_tmf654(doc, token="t", fetched_at=NOW, limits=LIMITS)
    except InvalidUpstreamAnswer:
        return
    assert units == "CNY" and isinstance(snap.main_balance, Money)


def test_signing_round_trip() -> None:
    headers = auth_headers(
        method="POST",
        path="/p",
        query="",
        key_id="k",
        secret="s",
        body=b"{}",
        timestamp_ms=1,
        nonce="n",
    )
    parsed = parse_authorization(headers["Authorization"])
    assert parsed is not None and parsed[0] == "k"
    message = string_to_sign("POST", "/p", "", "k", "1", "n", b"{}")
    assert verify_signature("s", message, parsed[1])
    assert not verify_signature(
        "s", string_to_sign("POST", "/p", "", "k", "1", "n", b"{ }"), parsed[1]
    )
    assert parse_authorization("Basic abc") is None


def test_fault_rules_validate_and_count() -> None:
    now = [0.0]
    table = FaultTable(clock=lambda: now[0], rng=random.Random(1))
    for bad in (
        {"fault": "nope"},
        {"fault": "status", "status": "x"},
        {"fault": "invalid_json", "variant": "yaml"},
        {"fault": "hang", "ms": 1},
        {"fault": "hang", "times": -1},
        [],
    ):
        with pytest.raises(ValueError):
            table.add(bad)
    table.add({"fault": "status", "times": 2, "msisdn": "+8613800138000"})
    assert table.pick("13900000000") is None
    assert table.pick("13800138000") is not None and table.pick("13800138000") is not None
    assert table.pick("13800138000") is None  # flap:2 is over
    table.add({"fault": "outage", "after": 5, "duration": 5})
    assert table.pick(None) is None
    now[0] = 6
    assert table.pick(None) is not None
    now[0] = 11
    assert table.pick(None) is None


def test_error_codes_never_carry_a_number() -> None:
    error = error_for_status(500, {"code": "FAILED_FOR_13800138000"}, None)
    assert "13800138000" not in str(error)
    assert isinstance(error, UpstreamRefused) and error.code == "UNRECOGNISED_CODE"
    assert error_for_status(500, {"code": "60"}, None).code == "60"  # type: ignore[attr-defined]
