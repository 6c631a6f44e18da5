"""The access middleware's metric moves, tallied per event-loop turn, land as if made one by one."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Histogram

from hotline.base.metrics import LATENCY_BUCKETS
from hotline.web.observe import MetricTally, observe_many

AMOUNTS = [0.0, 0.001, 0.002, 0.0021, 0.005, 0.05, 0.3, 10.0, 11.5, 0.002, 0.004]


def _samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    ]


def _histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    histogram = Histogram("t_seconds", "t", ["channel"], buckets=LATENCY_BUCKETS, registry=registry)
    return registry, histogram


def test_observe_many_equals_observing_one_by_one() -> None:
    one_reg, one = _histogram()
    many_reg, many = _histogram()
    for amount in AMOUNTS:
        one.labels("ussd").observe(amount)
    observe_many(many.labels("ussd"), AMOUNTS[:4])
    observe_many(many.labels("ussd"), AMOUNTS[4:])
    assert _samples(many_reg) == _samples(one_reg)
    counts = {s[1].get("le"): s[2] for s in _samples(many_reg) if s[0] == "t_seconds_bucket"}
    assert counts["0.002"] == 4 and counts["+Inf"] == len(AMOUNTS)  # bounds are inclusive


class _Plain:
    """A child without prometheus-client's bucket layout: gets plain `observe` calls."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def observe(self, amount: float) -> None:
        self.seen.append(amount)


def test_observe_many_falls_back_to_observe() -> None:
    plain = _Plain()
    observe_many(plain, [0.1, 0.2])
    assert plain.seen == [0.1, 0.2]


def test_tally_applies_a_turns_moves_when_the_turn_ends() -> None:
    registry = CollectorRegistry()
    counter = Counter("t_requests", "t", ["outcome"], registry=registry)
    hist_reg, histogram = _histogram()
    tally = MetricTally()

    async def turn() -> tuple[float, float]:
        for _ in range(3):
            tally.inc(counter.labels("ok"))
            tally.observe(histogram.labels("ussd"), 0.003)
        during = registry.get_sample_value("t_requests_total", {"outcome": "ok"})
        await asyncio.sleep(0)  # the turn ends: its moves are applied
        after = registry.get_sample_value("t_requests_total", {"outcome": "ok"})
        assert during is not None and after is not None
        return during, after

    assert asyncio.run(turn()) == (0.0, 3.0)
    tally.inc(counter.labels("ok"))  # outside a loop: at once
    assert registry.get_sample_value("t_requests_total", {"outcome": "ok"}) == 4.0
    total = hist_reg.get_sample_value("t_seconds_sum", {"channel": "ussd"})
    assert total is not None and abs(total - 0.009) < 1e-12
    assert hist_reg.get_sample_value("t_seconds_count", {"channel": "ussd"}) == 3.0
