"""Flow versions stay apart across a reload; upstream figures come from the resilience
layers' own series."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from hotline.analytics.recorder import RECORDER, Recorder
from hotline.analytics.report import build_report
from hotline.analytics.store import AnalyticsStore
from hotline.base.config import Settings
from hotline.base.privacy import Pseudonymizer
from hotline.flow.registry import FlowRegistry
from hotline.resilience.metrics import CallMetrics
from hotline.store.redisurl import open_redis
from tests.analytics.conftest import (
    ACTIVE,
    ADMIN_TOKEN,
    ROOT,
    Client,
    Ussd,
    settle_and_report,
    unknown,
)

MakeClient = Callable[..., Awaitable[Client]]


async def test_versions_before_and_after_a_reload_are_counted_apart(
    make_client: MakeClient, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    client = await make_client(flows_dir=flows)
    registry = client.app[RECORDER].flows
    before = registry.current("balance")
    assert before is not None
    # A session that starts on the old version and finishes after the reload.
    straddling = Ussd(client, "straddle", unknown(50))
    await straddling.send()
    for i, phone in enumerate(ACTIVE):
        s = Ussd(client, f"v1-{i}", phone)
        await s.send()
        await s.send("1")
    # A wording change: the invalid-input limit (a new content hash, same flow).
    path = flows / "balance.yaml"
    path.write_text(path.read_text().replace("max_invalid: 3", "max_invalid: 2"))
    reloaded = await client.post(
        "/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert reloaded.status == 200, await reloaded.text()
    after = registry.current("balance")
    assert after is not None and after.version != before.version
    assert (await straddling.send("1")).startswith("END ")  # unknown number: an error
    for i in range(6):
        s = Ussd(client, f"v2-{i}", unknown(60 + i))
        await s.send()
        await s.send("9")
        await s.send("9")  # the second invalid key ends the session on the new version
    report = await settle_and_report(client.app)
    by_version = {r.version: r for r in report.totals if r.flow == "balance"}
    old, new = by_version[before.version], by_version[after.version]
    assert (old.contacts, old.result, old.error) == (6, 5, 1)
    assert (new.contacts, new.result, new.error, new.abandoned) == (6, 0, 6, 0)
    funnels = {(f.version, f.state): f for f in report.funnels}
    assert funnels[(after.version, "main")].invalid == 12
    assert funnels[(before.version, "main")].invalid == 0


async def test_upstream_cache_answers_and_breaker_open_time(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(redis_url=redis_url, analytics={"enabled": True})  # type: ignore[arg-type]
    registry = CollectorRegistry()
    calls = CallMetrics(registry, "balance")
    now = [1_765_000_000.0]
    redis = open_redis(redis_url)
    store = AnalyticsStore(redis, settings.env)
    recorder = Recorder(
        settings=settings,
        store=store,
        flows=FlowRegistry([]),
        pseudonym=Pseudonymizer("x"),
        registry=registry,
        clock=lambda: now[0],
    )
    for _ in range(3):
        calls.cache_hits.labels("ledger", "fresh").inc()
    calls.cache_hits.labels("ledger", "stale").inc()
    calls.cache_misses.labels("ledger").inc(4)
    calls.breaker_state.labels("ledger").set(1)  # open
    now[0] += 30
    await recorder.sample()
    calls.breaker_state.labels("ledger").set(0)  # closed again: no more open time
    calls.cache_misses.labels("ledger").inc(2)
    now[0] += 60
    await recorder.sample()
    import datetime as dt
    from zoneinfo import ZoneInfo

    day = dt.datetime.fromtimestamp(now[0], ZoneInfo(settings.timezone)).date()
    report = await build_report(store, day, day)
    (up,) = report.upstream
    assert (up.cache_fresh, up.cache_stale, up.cache_miss) == (3, 1, 6)
    assert up.cache_hit_rate == 0.4 and up.breaker_open_seconds == 30.0
    await redis.aclose()


async def test_redis_down_drops_and_counts_the_turns_never_the_request(
    stoppable_redis: Any,
) -> None:
    from hotline.analytics.metrics import AnalyticsMetrics
    from hotline.flow.events import ChannelEvent
    from hotline.flow.screen import Screen, Turn

    settings = Settings(redis_url=stoppable_redis.url, analytics={"enabled": True})  # type: ignore[arg-type]
    registry = CollectorRegistry()
    redis = open_redis(stoppable_redis.url, socket_connect_timeout=0.5)
    recorder = Recorder(
        settings=settings,
        store=AnalyticsStore(redis, settings.env),
        flows=FlowRegistry([]),
        pseudonym=Pseudonymizer("x"),
        metrics=AnalyticsMetrics(registry),
    )
    event = ChannelEvent("ussd", "africastalking", "s1", "+8613800138000", "start", entry="*100#")
    stoppable_redis.stop()
    recorder.observe(event, Turn(Screen("main", "zh-CN", ()), ("started",)), False)
    assert await recorder.flush() == 0
    assert recorder.dropped == 1
    assert registry.get_sample_value("hotline_analytics_dropped_turns_total") == 1
    await recorder.tick()  # the background round survives it too
    await redis.aclose()
