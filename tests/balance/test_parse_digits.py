"""An upstream answer spelling a number in another script is invalid, not a balance."""

from __future__ import annotations

import datetime as dt

import pytest

from hotline.balance.parse import Limits, error_for_status, parse_tmf654, parse_v1
from hotline.base.errors import InvalidUpstreamAnswer

NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("amount", ["١٢.٥٠", "１２.５０", "12.5٠"])
def test_tmf_amount_in_other_digits_is_invalid(amount: str) -> None:
    bucket = {
        "id": "m",
        "usageType": "monetary",
        "status": "active",
        "remainingValue": {"amount": amount, "units": "CNY"},
    }
    with pytest.raises(InvalidUpstreamAnswer):
        parse_tmf654([bucket], token="t", fetched_at=NOW, limits=Limits())


def test_v1_timestamp_in_other_digits_is_invalid() -> None:
    doc = {
        "as_of": "٢٠٢٦-11-24T10:00:00+08:00",
        "account_status": "active",
        "main_balance": {"amount_minor": 1250, "currency": "CNY"},
        "buckets": [],
    }
    with pytest.raises(InvalidUpstreamAnswer):
        parse_v1(doc, token="t", fetched_at=NOW, limits=Limits())


def test_error_code_in_other_digits_is_unrecognised() -> None:
    error = error_for_status(503, {"code": "٥٠٣"}, None)
    assert "٥" not in str(error) and "٥" not in repr(vars(error))
