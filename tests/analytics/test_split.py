"""Sessions held by the worker that takes them, and those split across workers: two real
apps (two workers' recorders) on one Redis, in one process, so the test says which
worker takes which request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from hotline.analytics.facts import TRANSFER_EVENT
from hotline.analytics.metrics import AnalyticsMetrics
from hotline.analytics.recorder import GRACE, RECORDER, Recorder
from hotline.analytics.report import Report, build_report
from hotline.analytics.store import AnalyticsStore
from hotline.base.config import Settings
from hotline.base.privacy import Pseudonymizer
from hotline.flow.events import ChannelEvent
from hotline.flow.registry import FlowRegistry
from hotline.flow.screen import Screen, Turn
from hotline.store.redisurl import open_redis
from hotline.web.keys import METRICS
from tests.analytics.conftest import ACTIVE, Client, Ussd, recorder_settings, today

MakeClient = Callable[..., Awaitable[Client]]


async def _report(client: Client) -> Report:
    recorder = client.app[RECORDER]
    day = today(recorder_settings(client.app))
    return await build_report(recorder.store, day, day, 1)


async def _rounds(*clients: Client, contacts: int) -> Report:
    """Background rounds of every worker until `contacts` sessions are counted (a split
    session whose first turn was not in Redis yet when claimed waits a second)."""
    deadline = time.monotonic() + 15
    while True:
        await asyncio.sleep(GRACE)
        for client in clients:
            await client.app[RECORDER].flush()
        for client in clients:
            await client.app[RECORDER].settle()
        report = await _report(clients[0])
        if time.monotonic() > deadline or sum(r.contacts or 0 for r in report.totals) >= contacts:
            return report


def _settled(*clients: Client) -> float:
    return sum(
        client.app[METRICS].registry.get_sample_value(
            "hotline_analytics_sessions_total",
            {"channel": "ussd", "flow": "balance", "outcome": "result"},
        )
        or 0.0
        for client in clients
    )


async def test_split_and_held_sessions_are_each_counted_once(make_client: MakeClient) -> None:
    a = await make_client(analytics={"enabled": True, "settle_after": 0})
    b = await make_client(analytics={"enabled": True, "settle_after": 0})
    for i, phone in enumerate(ACTIVE):
        # Split: the dial on one worker, the choice on the other (both ways round).
        first, second = (a, b) if i % 2 else (b, a)
        assert (await Ussd(first, f"split-{i}", phone).send()).startswith("CON ")
        assert (await Ussd(second, f"split-{i}", phone).send("1")).startswith("END ")
        for name, client in (("a", a), ("b", b)):  # held: both turns on one worker
            session = Ussd(client, f"{name}-{i}", phone)
            assert (await session.send()).startswith("CON ")
            assert (await session.send("1")).startswith("END ")
    report = await _rounds(a, b, contacts=15)
    (row,) = report.totals
    assert (row.channel, row.flow) == ("ussd", "balance")
    assert (row.contacts, row.result, row.error, row.abandoned) == (15, 15, 0, 0)
    assert row.steps_median == 2  # a split session's steps are counted from both halves
    funnel = {f.state: f for f in report.funnels}
    assert funnel["main"].visits == 15 and funnel["main"].inputs == 15
    assert _settled(a, b) == 15  # the Prometheus series add up over the workers too
    # Nothing left open: the split sessions were claimed from Redis, the others counted
    # where they were held (a split one that did not end here stays a mark without turns
    # for its lifetime, so that its later turns here go to Redis too).
    assert await a.app[RECORDER].store.open_sessions() == 0
    for client in (a, b):
        held = client.app[RECORDER]._held
        assert all(
            k.startswith("ussd:split-") and h.shared and not h.turns for k, h in held.items()
        )


async def test_a_stop_hands_the_sessions_it_holds_to_the_others(
    make_client: MakeClient,
) -> None:
    a = await make_client(analytics={"enabled": True, "settle_after": 0})
    b = await make_client(analytics={"enabled": True, "settle_after": 0})
    for i, phone in enumerate(ACTIVE):
        assert (await Ussd(a, f"restart-{i}", phone).send()).startswith("CON ")
    await a.app[RECORDER].flush()
    await a.app[RECORDER].stop()  # a rolling restart: the dials were answered by `a`
    assert await a.app[RECORDER].store.open_sessions() == 5  # in Redis, for anyone
    for i, phone in enumerate(ACTIVE):
        assert (await Ussd(b, f"restart-{i}", phone).send("1")).startswith("END ")
    (row,) = (await _rounds(b, contacts=5)).totals
    assert (row.contacts, row.result, row.abandoned) == (5, 5, 0)
    assert _settled(a, b) == 5


def _event(session: str, kind: str) -> ChannelEvent:
    return ChannelEvent("ussd", "africastalking", session, "+8613800138000", kind, entry="*100#")  # type: ignore[arg-type]


async def test_a_session_both_workers_began_is_found_through_the_stream(
    redis_url: str,
) -> None:
    """`a` saw the dial, `b` a restart of the same session (the resume offer's "start
    over") and its end: both hold a start, neither can tell alone. The stream tells."""
    settings = Settings(redis_url=redis_url, analytics={"enabled": True, "settle_after": 0})  # type: ignore[arg-type]
    redis = open_redis(redis_url)
    registry = CollectorRegistry()

    def recorder() -> Recorder:
        return Recorder(
            settings=settings,
            store=AnalyticsStore(redis, settings.env),
            flows=FlowRegistry([]),
            pseudonym=Pseudonymizer("x"),
            metrics=AnalyticsMetrics(CollectorRegistry()),
            registry=registry,
        )

    a, b = recorder(), recorder()
    a.observe(_event("s1", "start"), Turn(Screen("main", "zh-CN", ()), ("started",)), False)
    await a.flush()
    b.observe(
        _event("s1", "input"),
        Turn(Screen("agent", "zh-CN", ()), ("restarted", TRANSFER_EVENT)),
        True,
    )
    await b.flush()  # names s1
    await a.flush()  # hears b: s1 is shared, its facts go to Redis, named again
    await b.flush()  # hears a: so is b's part
    assert a._held["ussd:s1"].shared and b._held["ussd:s1"].shared
    day = today(settings)
    deadline = time.monotonic() + 15
    while True:  # rounds until the watermarks pass the session's end (a loaded machine)
        await asyncio.sleep(GRACE)
        for r in (a, b):
            await r.flush()
            await r.settle()
        report = await build_report(a.store, day, day, 1)
        if report.totals or time.monotonic() > deadline:
            break
    (row,) = report.totals
    # One contact from the first start, with what both workers saw of it.
    assert (row.contacts, row.transfer, row.abandoned) == (1, 1, 0)
    assert {f.state: f.visits for f in report.funnels} == {"main": 1, "agent": 1}
    await redis.aclose()


async def test_held_sessions_cost_redis_a_few_commands_per_flush(
    make_client: MakeClient, redis_url: str
) -> None:
    client = await make_client(analytics={"enabled": True, "settle_after": 0})
    recorder = client.app[RECORDER]
    raw = aioredis.from_url(redis_url)

    async def commands() -> int:
        stats: dict[str, Any] = await raw.info("commandstats")
        return sum(int(v["calls"]) for v in stats.values())

    # The background rounds would interleave their own commands: take them over.
    await recorder.flush()
    await recorder.settle()
    sessions = 40
    async with recorder._lock:  # the background task waits
        for i in range(sessions):
            s = Ussd(client, f"many-{i}", ACTIVE[i % len(ACTIVE)])
            await s.send()
            await s.send("1")
        before = await commands()
        assert await recorder._flush() == 2 * sessions
        settled = await recorder._settle_held(time.time() + 10)
        after = await commands()
    assert settled == sessions
    # One stream read, one entry, one counter pipeline (a field or distinct key each):
    # not one command per turn or per session.
    assert after - before < 30, after - before
    (row,) = (await _report(client)).totals
    assert (row.contacts, row.result) == (sessions, sessions)
    await raw.aclose()


async def test_the_stream_holds_no_number(make_client: MakeClient) -> None:
    client = await make_client(analytics={"enabled": True, "settle_after": 0})
    for i, phone in enumerate(ACTIVE):
        await Ussd(client, f"priv-{i}", phone).send()
    recorder = client.app[RECORDER]
    await recorder.flush()
    entries = await recorder.store.redis.xrange(recorder.store._workers_key)
    blob = b"".join(k + v for _, fields in entries for k, v in fields.items())
    assert b"priv-0" in blob
    for phone in ACTIVE:
        assert phone.lstrip("+").encode() not in blob and phone[3:].encode() not in blob
