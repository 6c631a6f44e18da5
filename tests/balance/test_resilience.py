"""The whole provider stack against the simulator: coalescing, breaker, cache, limits, logs."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from hotline.balance.provider import open_provider
from hotline.balance.sim.app import stats_key
from hotline.base.config import Settings
from hotline.base.errors import (
    InvalidUpstreamAnswer,
    RateLimited,
    UpstreamNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from hotline.base.privacy import Pseudonymizer
from hotline.base.values import Money
from hotline.resilience.faults import BulkheadFull, CircuitOpen
from tests.balance.conftest import SECRET, FakeClock, Sim

DEMO = "13800138000"
Make = Callable[..., Settings]


async def test_thousand_concurrent_lookups_make_one_upstream_call(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    await sim.fault(fault="latency", ms=100)
    async with open_provider(make_settings(sim.url), pseudonym) as provider:
        results = await asyncio.gather(*(provider.fetch(DEMO) for _ in range(1000)))
    assert await sim.calls(DEMO) == 1
    assert {r.main_balance for r in results} == {Money(1250)}


async def test_number_spellings_share_one_call(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    await sim.fault(fault="latency", ms=50)
    async with open_provider(make_settings(sim.url), pseudonym) as provider:
        spellings = ["13800138000", "+8613800138000", "008613800138000", "+86 138-0013-8000"]
        results = await asyncio.gather(*(provider.fetch(n) for n in spellings))
    assert await sim.calls(DEMO) == 1
    assert len({r.subscriber_token for r in results}) == 1


async def test_cancelling_the_first_waiter_does_not_fail_the_others(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    await sim.fault(fault="latency", ms=150)
    async with open_provider(make_settings(sim.url), pseudonym) as provider:
        first = asyncio.create_task(provider.fetch(DEMO))
        await asyncio.sleep(0.02)
        others = [asyncio.create_task(provider.fetch(DEMO)) for _ in range(10)]
        await asyncio.sleep(0.02)
        first.cancel()
        results = await asyncio.gather(*others)
        with pytest.raises(asyncio.CancelledError):
            await first
    assert all(r.main_balance == Money(1250) for r in results)
    assert await sim.calls(DEMO) == 1


async def test_outage_opens_the_breaker_serves_stale_and_probes_once(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    settings = make_settings(
        sim.url,
        fresh_ttl=0,
        retries=0,
        breaker_failures=3,
        breaker_reset=10.0,
        subscriber_rate="1000/minute",
    )
    async with open_provider(settings, pseudonym, registry, clock=clock) as provider:
        good = await provider.fetch(DEMO)
        assert good.stale is False
        await sim.fault(fault="status", status=503)
        for _ in range(3):  # three failures reach the upstream, each answered from stale
            clock.advance(1)
            served = await provider.fetch(DEMO)
            assert served.stale is True and served.as_of == good.as_of
        assert registry.get_sample_value("hotline_balance_breaker_state", {"provider": "http"}) == 1
        calls_when_open = (await sim.stats())["total_calls"]
        assert calls_when_open == 4
        for _ in range(20):  # open: nothing reaches the upstream, stale still served
            assert (await provider.fetch(DEMO)).stale is True
        with pytest.raises(CircuitOpen):
            await provider.fetch("13800138001")  # no stale answer for this one
        assert (await sim.stats())["total_calls"] == calls_when_open

        clock.advance(10)  # half-open: of 30 concurrent callers exactly one probes
        numbers = [f"1380013{8100 + i}" for i in range(30)]
        outcomes = await asyncio.gather(
            *(provider.fetch(n) for n in numbers), return_exceptions=True
        )
        assert (await sim.stats())["total_calls"] == calls_when_open + 1
        assert sum(isinstance(o, CircuitOpen) for o in outcomes) == 29
        assert (
            registry.get_sample_value("hotline_balance_breaker_state", {"provider": "http"}) == 1
        )  # probe failed

        await sim.clear_faults()  # the upstream returns: recovery is automatic
        clock.advance(10)
        recovered = await provider.fetch(DEMO)
        assert recovered.stale is False and recovered.main_balance == Money(1250)
        assert registry.get_sample_value("hotline_balance_breaker_state", {"provider": "http"}) == 0
        assert (
            registry.get_sample_value(
                "hotline_balance_cache_hits_total", {"provider": "http", "result": "stale"}
            )
            == 23
        )


async def test_invalid_answers_are_never_cached(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    clock = FakeClock()
    async with open_provider(
        make_settings(sim.url, fresh_ttl=5), pseudonym, clock=clock
    ) as provider:
        await sim.fault(fault="wrong_types", variant="string_amount", times=1)
        with pytest.raises(InvalidUpstreamAnswer):
            await provider.fetch(DEMO)
        good = await provider.fetch(DEMO)  # not cached: goes upstream again
        assert good.main_balance == Money(1250)
        assert await sim.calls(DEMO) == 2
        clock.advance(6)
        await sim.fault(fault="out_of_range", variant="huge", times=1)
        stale = await provider.fetch(DEMO)  # the last *good* answer, labelled stale
        assert stale.stale is True and stale.main_balance == Money(1250)
        clock.advance(0.1)
        fresh = await provider.fetch(DEMO)
        assert fresh.stale is False and await sim.calls(DEMO) == 4


async def test_fresh_answers_come_from_cache_and_max_stale_is_a_hard_bound(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    clock = FakeClock()
    async with open_provider(
        make_settings(sim.url, fresh_ttl=5, max_stale=60), pseudonym, clock=clock
    ) as provider:
        await provider.fetch(DEMO)
        clock.advance(4.9)
        await provider.fetch(DEMO)
        assert await sim.calls(DEMO) == 1
        await sim.fault(fault="status", status=500)
        clock.advance(30)
        assert (await provider.fetch(DEMO)).stale is True
        clock.advance(31)  # 65.9 s old: past max_stale, never served
        with pytest.raises(UpstreamUnavailable):
            await provider.fetch(DEMO)


async def test_not_found_is_negatively_cached(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    clock = FakeClock()
    async with open_provider(
        make_settings(sim.url, negative_ttl=60), pseudonym, clock=clock
    ) as provider:
        for _ in range(3):
            with pytest.raises(UpstreamNotFound):
                await provider.fetch("13900000001")
        assert await sim.calls("13900000001") == 1
        clock.advance(61)
        with pytest.raises(UpstreamNotFound):
            await provider.fetch("13900000001")
        assert await sim.calls("13900000001") == 2


async def test_subscriber_limit_serves_cache_then_refuses(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    clock = FakeClock()
    async with open_provider(
        make_settings(sim.url, fresh_ttl=0, subscriber_rate="2/minute"), pseudonym, clock=clock
    ) as provider:
        for _ in range(2):
            clock.advance(1)
            assert (await provider.fetch(DEMO)).stale is False
        clock.advance(1)
        assert (await provider.fetch(DEMO)).stale is True  # the third: from cache
        assert await sim.calls(DEMO) == 2
    settings = make_settings(sim.url, fresh_ttl=0, max_stale=0, subscriber_rate="1/minute")
    async with open_provider(settings, pseudonym, clock=clock) as provider:
        await provider.fetch("13800138001")
        clock.advance(1)
        with pytest.raises(RateLimited):
            await provider.fetch("13800138001")


async def test_one_retry_with_the_same_request_id(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    registry = CollectorRegistry()
    async with open_provider(make_settings(sim.url), pseudonym, registry) as provider:
        await sim.fault(fault="status", status=502, times=1)  # flap:1
        assert (await provider.fetch(DEMO)).main_balance == Money(1250)
        assert (await sim.stats())["max_attempts"] == 2
        await sim.fault(fault="status", status=503)  # down for good: still only two attempts
        with pytest.raises(UpstreamUnavailable):
            await provider.fetch("13800138001")
        stats = await sim.stats()
    assert stats["max_attempts"] == 2 and stats["calls"][stats_key(SECRET, "13800138001")] == 2
    assert registry.get_sample_value("hotline_balance_retries_total", {"provider": "http"}) == 2


async def test_retry_after_beyond_the_budget_is_not_waited_for(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    async with open_provider(make_settings(sim.url, deadline=1.0), pseudonym) as provider:
        await sim.fault(fault="rate_limit", retry_after=5)
        started = time.perf_counter()
        with pytest.raises(UpstreamUnavailable):
            await provider.fetch(DEMO)
        assert time.perf_counter() - started < 0.5
    assert await sim.calls(DEMO) == 1


async def test_hang_gives_stale_well_inside_the_deadline(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    clock = FakeClock()
    async with open_provider(
        make_settings(sim.url, deadline=0.3, fresh_ttl=5), pseudonym, clock=clock
    ) as provider:
        await provider.fetch(DEMO)
        clock.advance(6)
        await sim.fault(fault="hang")
        started = time.perf_counter()
        stale = await provider.fetch(DEMO)
        assert time.perf_counter() - started < 0.5
        assert stale.stale is True
        with pytest.raises(UpstreamTimeout):
            await provider.fetch("13800138001")


async def test_bulkhead_caps_concurrency(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    await sim.fault(fault="latency", ms=200)
    settings = make_settings(sim.url, max_concurrency=4, bulkhead_wait=0.05)
    async with open_provider(settings, pseudonym) as provider:
        numbers = [f"1390000{i:04d}" for i in range(20)]
        outcomes = await asyncio.gather(
            *(provider.fetch(n) for n in numbers), return_exceptions=True
        )
    stats = await sim.stats()
    assert stats["max_inflight"] == 4
    assert sum(isinstance(o, BulkheadFull) for o in outcomes) == 16


async def test_ledger_provider_through_the_stack(
    make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    async with open_provider(make_settings(), pseudonym) as provider:
        snap = await provider.fetch("+8613800138004")
        assert snap.main_balance == Money(10_000_001) and snap.provider == "ledger"
        assert (await provider.fetch("13800138003")).account_status == "suspended"
        with pytest.raises(UpstreamNotFound):
            await provider.fetch("13800138009")


_PHONE = re.compile(r"(?<![0-9a-f.e+-])1\d{10}(?![0-9a-f])")  # not inside a hex token


async def test_logs_and_metrics_hold_no_phone_number_or_balance(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registry = CollectorRegistry()
    clock = FakeClock()
    settings = make_settings(
        sim.url, fresh_ttl=0, breaker_failures=2, deadline=0.3, subscriber_rate="1000/minute"
    )
    async with open_provider(settings, pseudonym, registry, clock=clock) as provider:
        await provider.fetch(DEMO)
        for fault in (
            {"fault": "wrong_types", "variant": "prefixed_amount"},
            {"fault": "out_of_range", "variant": "huge"},
            {"fault": "invalid_json", "variant": "nan"},
            {"fault": "status", "status": 503},
            {"fault": "hang"},
        ):
            await sim.clear_faults()
            await sim.fault(**fault)
            clock.advance(11)
            for number in (DEMO, "13800138002", "13900000002"):
                try:
                    await provider.fetch(number)
                except Exception as exc:  # the messages are logged by callers too
                    logging.getLogger("test").warning("lookup failed: %s", exc)
    labels = " ".join(
        value
        for metric in registry.collect()
        for sample in metric.samples
        for value in sample.labels.values()
    )
    assert "balance upstream error" in caplog.text  # something was logged
    assert not _PHONE.search(caplog.text), "a phone number leaked into the logs"
    assert not re.search(r"\d{5}", labels), f"digits in metric labels: {labels}"
    assert "hotline_balance_upstream_errors_total" in generate_latest(registry).decode()
    for amount in ("12.5", "1250", "-3.2", "-320", "1785"):
        assert amount not in caplog.text


async def test_subscriber_limit_window_moves(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    clock = FakeClock()
    settings = make_settings(sim.url, fresh_ttl=0, max_stale=0, subscriber_rate="2/minute")
    async with open_provider(settings, pseudonym, clock=clock) as provider:
        await provider.fetch(DEMO)
        clock.advance(30)
        await provider.fetch(DEMO)
        clock.advance(29)
        with pytest.raises(RateLimited):
            await provider.fetch(DEMO)
        await provider.fetch("13800138001")  # another subscriber has their own window
        clock.advance(1.5)  # the first hit left the window
        await provider.fetch(DEMO)
    assert await sim.calls(DEMO) == 3


async def test_breaker_trips_on_failure_rate(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    clock = FakeClock()
    settings = make_settings(
        sim.url,
        retries=0,
        breaker_failures=100,
        breaker_min_calls=4,
        breaker_failure_rate=0.5,
        breaker_window=30,
    )
    async with open_provider(settings, pseudonym, clock=clock) as provider:
        for i in range(4):  # good, bad, good, bad: never two failures in a row
            if i % 2:
                await sim.fault(fault="status", status=500, times=1)
                with pytest.raises(UpstreamUnavailable):
                    await provider.fetch(f"1380013800{i}")
            else:
                await provider.fetch(f"1380013800{i}")
        with pytest.raises(CircuitOpen):
            await provider.fetch("13800138005")
    assert (await sim.stats())["total_calls"] == 4


async def test_retry_after_within_budget_is_honoured(
    sim: Sim, make_settings: Make, pseudonym: Pseudonymizer
) -> None:
    async with open_provider(make_settings(sim.url), pseudonym) as provider:
        await sim.fault(fault="rate_limit", retry_after=0, times=1)
        assert (await provider.fetch(DEMO)).main_balance == Money(1250)
    assert (await sim.stats())["max_attempts"] == 2
