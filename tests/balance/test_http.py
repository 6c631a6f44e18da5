"""The `http` provider against the billing simulator over loopback, one fault at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from hotline.balance.http import HttpProvider
from hotline.balance.model import BalanceSnapshot, Quantity
from hotline.balance.provider import open_provider
from hotline.base.config import Settings
from hotline.base.errors import (
    InvalidUpstreamAnswer,
    UpstreamNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from hotline.base.privacy import Pseudonymizer
from hotline.base.values import Money
from hotline.resilience.faults import UpstreamRefused
from tests.balance.conftest import Sim

DEMO = "13800138000"
GB = 1024**3


@pytest.fixture(params=["v1", "tmf654"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def raw(
    sim: Sim, make_settings: Callable[..., Settings], pseudonym: Pseudonymizer, dialect: str
) -> AsyncIterator[HttpProvider]:
    provider = HttpProvider(make_settings(sim.url, dialect=dialect).balance, pseudonym)
    yield provider
    await provider.close()


async def test_healthy_answer_in_both_dialects(raw: HttpProvider, dialect: str) -> None:
    snap = await raw.fetch("+86 138 0013 8000")
    assert snap.main_balance == Money(1250, "CNY")
    assert isinstance(snap.main_balance, Money)
    assert snap.bucket("data") is not None
    assert snap.bucket("data").remaining == Quantity(value=3 * GB, unit="byte")  # type: ignore[union-attr]
    assert snap.bucket("voice").remaining == Quantity(value=200 * 60, unit="second")  # type: ignore[union-attr]
    assert snap.bucket("sms").remaining == Quantity(value=100, unit="message")  # type: ignore[union-attr]
    assert snap.bucket("data").valid_until is not None  # type: ignore[union-attr]
    assert snap.account_status == ("active" if dialect == "v1" else "unknown")
    assert snap.stale is False


async def test_owing_suspended_and_unknown(raw: HttpProvider, dialect: str) -> None:
    owing = await raw.fetch("13800138002")
    assert owing.main_balance == Money(-320)
    if dialect == "v1":
        assert (await raw.fetch("13800138003")).account_status == "suspended"
    with pytest.raises(UpstreamNotFound):
        await raw.fetch("13900000000")
    with pytest.raises(UpstreamNotFound):
        await raw.fetch("12")


async def test_admin_put_subscriber(raw: HttpProvider, sim: Sim) -> None:
    await sim.put(
        "13700000001",
        {"status": "active", "main_minor": 99, "buckets": [{"usage_type": "sms", "remaining": 7}]},
    )
    snap = await raw.fetch("13700000001")
    assert snap.main_balance == Money(99)
    assert snap.bucket("sms").remaining.value == 7  # type: ignore[union-attr]
    await sim.put("13700000001", {"not_found": True})
    with pytest.raises(UpstreamNotFound):
        await raw.fetch("13700000001")


INVALID_FAULTS: list[dict[str, Any]] = [
    {"fault": "html_error", "status": 200},
    {"fault": "truncated_json"},
    {"fault": "invalid_json", "variant": "trailing_comma"},
    {"fault": "invalid_json", "variant": "single_quotes"},
    {"fault": "invalid_json", "variant": "nan"},
    {"fault": "bad_encoding", "variant": "gbk"},
    {"fault": "bad_encoding", "variant": "invalid_utf8"},
    {"fault": "bad_encoding", "variant": "bom"},
    {"fault": "empty_body"},
    {"fault": "wrong_types", "variant": "prefixed_amount"},
    {"fault": "wrong_types", "variant": "bool"},
    {"fault": "wrong_types", "variant": "null"},
    {"fault": "wrong_types", "variant": "object"},
    {"fault": "wrong_types", "variant": "minutes_string"},
    {"fault": "missing_field", "field": "remaining"},
    {"fault": "duplicate_keys"},
    {"fault": "out_of_range", "variant": "huge"},
    {"fault": "out_of_range", "variant": "negative_data"},
    {"fault": "out_of_range", "variant": "expiry_1970"},
    {"fault": "time_formats", "variant": "compact"},
    {"fault": "business_error_200"},
]
V1_ONLY_INVALID: list[dict[str, Any]] = [
    {"fault": "wrong_types", "variant": "string_amount"},
    {"fault": "wrong_types", "variant": "float_amount"},
    {"fault": "wrong_types", "variant": "key_casing"},
    {"fault": "missing_field", "field": "as_of"},
    {"fault": "missing_field", "field": "account_status"},
    {"fault": "time_formats", "variant": "no_offset"},
    {"fault": "time_formats", "variant": "epoch_s"},
    {"fault": "time_formats", "variant": "epoch_ms"},
    {"fault": "stale_as_of", "seconds": 3600},
    {"fault": "future_as_of", "seconds": 120},
]


@pytest.mark.parametrize("fault", INVALID_FAULTS, ids=lambda f: "-".join(map(str, f.values())))
async def test_malformed_answers_are_errors(
    raw: HttpProvider, sim: Sim, fault: dict[str, Any]
) -> None:
    await sim.fault(**fault)
    with pytest.raises(InvalidUpstreamAnswer) as caught:
        await raw.fetch(DEMO)
    assert DEMO not in str(caught.value) and "12.5" not in str(caught.value)


@pytest.mark.parametrize("fault", V1_ONLY_INVALID, ids=lambda f: "-".join(map(str, f.values())))
async def test_malformed_v1_answers_are_errors(
    sim: Sim,
    make_settings: Callable[..., Settings],
    pseudonym: Pseudonymizer,
    fault: dict[str, Any],
) -> None:
    provider = HttpProvider(make_settings(sim.url).balance, pseudonym)
    await sim.fault(**fault)
    with pytest.raises(InvalidUpstreamAnswer):
        await provider.fetch(DEMO)
    await provider.close()


async def test_tmf654_accepts_decimal_strings(
    sim: Sim, make_settings: Callable[..., Settings], pseudonym: Pseudonymizer
) -> None:
    """TMF654 amounts are lenient by contract (reference §7.4): "12.50" is 1250 fen."""
    provider = HttpProvider(make_settings(sim.url, dialect="tmf654").balance, pseudonym)
    await sim.fault(fault="wrong_types", variant="string_amount")
    assert (await provider.fetch(DEMO)).main_balance == Money(1250)
    await provider.close()


async def test_schema_drift_that_is_harmless(raw: HttpProvider, sim: Sim, dialect: str) -> None:
    await sim.fault(fault="extra_field", times=1)
    assert (await raw.fetch(DEMO)).main_balance == Money(1250)
    await sim.fault(fault="unknown_enum", times=1)
    snap = await raw.fetch(DEMO)
    if dialect == "v1":
        assert snap.account_status == "unknown"
    else:  # an unknown bucket status is not "active": the money is not counted
        assert snap.main_balance is None


@pytest.mark.parametrize(
    ("fault", "status", "retryable", "breaker"),
    [
        ({"fault": "status", "status": 500}, 500, True, True),
        ({"fault": "status", "status": 502}, 502, True, True),
        ({"fault": "status", "status": 503, "retry_after": 2}, 503, True, True),
        ({"fault": "status", "status": 504}, 504, True, True),
        ({"fault": "outage", "duration": 30}, 503, True, True),
        ({"fault": "html_error", "status": 502}, 502, True, True),
        ({"fault": "rate_limit", "retry_after": 3}, 429, True, False),
        ({"fault": "auth", "variant": "signature"}, 401, False, False),
        ({"fault": "auth", "variant": "skew"}, 401, False, False),
        ({"fault": "auth", "variant": "replay"}, 401, False, False),
    ],
    ids=lambda v: (
        str(v.get("variant", v.get("status", v["fault"]))) if isinstance(v, dict) else None
    ),
)
async def test_error_statuses_are_classified(
    raw: HttpProvider,
    sim: Sim,
    fault: dict[str, Any],
    status: int,
    retryable: bool,
    breaker: bool,
) -> None:
    await sim.fault(**fault)
    with pytest.raises(UpstreamRefused) as caught:
        await raw.fetch(DEMO)
    assert (caught.value.status, caught.value.retryable, caught.value.breaker) == (
        status,
        retryable,
        breaker,
    )
    if status == 429:
        assert caught.value.retry_after == 3.0


async def test_real_authentication(
    sim: Sim, make_settings: Callable[..., Settings], pseudonym: Pseudonymizer
) -> None:
    wrong = HttpProvider(
        make_settings(sim.url, secret=SecretStr("not-the-secret")).balance, pseudonym
    )
    with pytest.raises(UpstreamRefused) as caught:
        await wrong.fetch(DEMO)
    assert caught.value.code == "UNAUTHENTICATED"
    await wrong.close()
    fixed_nonce = HttpProvider(make_settings(sim.url).balance, pseudonym, nonce=lambda: "n-1")
    await fixed_nonce.fetch(DEMO)
    with pytest.raises(UpstreamRefused) as replay:
        await fixed_nonce.fetch(DEMO)
    assert replay.value.code == "NONCE_REPLAYED"
    await fixed_nonce.close()
    assert (await sim.stats())["auth_failures"] == 2


@pytest.mark.parametrize("when", ["before", "mid"])
async def test_connection_reset(raw: HttpProvider, sim: Sim, when: str) -> None:
    await sim.fault(fault="reset", when=when)
    with pytest.raises(UpstreamUnavailable):
        await raw.fetch(DEMO)


async def test_latency_and_outage_window(raw: HttpProvider, sim: Sim) -> None:
    await sim.fault(fault="latency", ms=60, times=1)
    started = time.perf_counter()
    await raw.fetch(DEMO)
    assert time.perf_counter() - started >= 0.06
    await sim.fault(fault="outage", duration=0.3)
    with pytest.raises(UpstreamRefused):
        await raw.fetch(DEMO)
    await asyncio.sleep(0.35)
    assert (await raw.fetch(DEMO)).main_balance == Money(1250)


async def _timed(fetch: Any) -> tuple[float, BaseException | BalanceSnapshot]:
    started = time.perf_counter()
    try:
        result: BaseException | BalanceSnapshot = await fetch
    except Exception as exc:
        result = exc
    return time.perf_counter() - started, result


@pytest.mark.parametrize("fault", [{"fault": "hang"}, {"fault": "slow_body", "interval_ms": 40}])
async def test_hang_and_slow_body_end_at_the_deadline(
    sim: Sim,
    make_settings: Callable[..., Settings],
    pseudonym: Pseudonymizer,
    fault: dict[str, Any],
) -> None:
    settings = make_settings(sim.url, deadline=0.3, read_timeout=5.0)
    async with open_provider(settings, pseudonym) as provider:
        await sim.fault(**fault)
        elapsed, result = await _timed(provider.fetch(DEMO))
    assert isinstance(result, UpstreamTimeout)
    assert 0.28 <= elapsed < 0.6
