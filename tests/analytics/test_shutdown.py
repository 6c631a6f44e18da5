"""The recorder's stop, driven through the app's own cleanup context: it ends whatever the
background round is doing when the app stops, and Redis frozen during the stop cannot
hold the worker's exit."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from hotline.analytics.recorder import RECORDER, _run_ctx
from hotline.flow.events import ChannelEvent
from hotline.flow.screen import Screen, Turn
from hotline.web.app import create_app
from tests.analytics.conftest import analytics_settings

# A stop that takes longer than this is a hang (a healthy one takes milliseconds).
HANG = 15.0


def _background_rounds() -> list[asyncio.Task[Any]]:
    """The recorder's background tasks still alive on this loop."""
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "Recorder.run" in repr(task.get_coro())
    ]


def _app(tmp_path: Path, redis_url: str, flush_interval: float) -> web.Application:
    return create_app(
        analytics_settings(tmp_path, redis_url, analytics={"flush_interval": flush_interval})
    )


async def test_the_app_stops_whatever_the_background_round_is_awaiting(
    tmp_path: Path, redis_url: str
) -> None:
    """The analytics cleanup context, started and stopped again and again with the
    background round busy (an interval of 0.1 ms: it is always on a Redis command), the
    stop landing a different number of loop turns into it each time. A stop that cancelled
    the round hung in about one try in four: redis-py's send (`asyncio.wait_for` on
    Python 3.11) returns its result when the cancel comes right after the send completed,
    the CancelledError is lost, and the round loop went on for ever."""
    app = _app(tmp_path, redis_url, 0.0001)
    for turns in range(48):
        ctx = _run_ctx(app)
        await anext(ctx)
        for _ in range(turns):
            await asyncio.sleep(0)
        try:
            async with asyncio.timeout(HANG):
                await anext(ctx, None)
        except TimeoutError:
            raise AssertionError(f"the stop {turns} loop turns into a round hung") from None
        assert _background_rounds() == [], f"a round outlived the stop ({turns} turns in)"


def _observe(app: web.Application, session: str) -> None:
    event = ChannelEvent("ussd", "africastalking", session, "+8613800138000", "start")
    app[RECORDER].observe(event, Turn(Screen("main", "zh-CN", ()), ("started",)), False)


async def test_redis_frozen_during_the_stop_ends_it_in_time_and_counts_what_is_lost(
    tmp_path: Path, stoppable_redis: Any
) -> None:
    """Redis alive but silent (SIGSTOP) when the app stops, a background round waiting
    on it: the stop ends within the recorder's `stop_timeout`, and the turns it could not
    write are counted as dropped, not lost unsaid."""
    app = _app(tmp_path, stoppable_redis.url, 0.05)
    recorder = app[RECORDER]
    recorder.stop_timeout = 2.0  # production: STOP_TIMEOUT; the mechanism is the same
    ctx = _run_ctx(app)
    await anext(ctx)
    _observe(app, "before")
    deadline = time.monotonic() + HANG
    while recorder._buffer:  # a round took it (Redis answers)
        assert time.monotonic() < deadline, "no round took the buffered turn"
        await asyncio.sleep(0.01)
    os.kill(stoppable_redis.proc.pid, signal.SIGSTOP)
    try:
        for n in range(3):
            _observe(app, f"frozen-{n}")
        await asyncio.sleep(0.2)  # a round is now waiting on the frozen Redis
        dropped_before = recorder.dropped
        started = time.monotonic()
        async with asyncio.timeout(HANG):
            await anext(ctx, None)
        took = time.monotonic() - started
    finally:
        os.kill(stoppable_redis.proc.pid, signal.SIGCONT)
    assert took < recorder.stop_timeout + 1.0, took
    assert _background_rounds() == []
    # The three frozen turns and the one held since before: none written, all counted.
    assert recorder.dropped - dropped_before >= 4, (dropped_before, recorder.dropped)
    registry = app[RECORDER].registry
    assert registry is not None
    assert (registry.get_sample_value("hotline_analytics_dropped_turns_total") or 0) >= 4
