"""The turn observer and its background work: record now, count later.

On the request path `Recorder.observe` does one thing: it appends `(time, event, turn,
ends)` to an in-memory buffer (a bounded deque; past `analytics.buffer` turns it drops
and counts). Everything else runs in one background task per worker, every
`analytics.flush_interval` seconds:

1. `flush` — turn each buffered turn into a `Fact` (pseudonym, outcome, lookups…) and
   append it to its session's list in Redis (one pipeline);
2. `settle` — claim the sessions that are due (their reply closed the conversation
   `settle_after` seconds ago, or they were quiet for the channel's session lifetime),
   summarize each from its facts in time order (so turns that went to different workers
   and were flushed out of order still count right), add the summaries to the day's
   rollups and the Prometheus series;
3. `sample` — add the upstream figures (cache answers, breaker open time) the
   resilience layers counted since the last sample to today's rollup.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from hotline.analytics.facts import Captured, Fact, Outcome, capture, end_outcomes, make_fact
from hotline.analytics.metrics import AnalyticsMetrics
from hotline.analytics.rollup import summarize
from hotline.analytics.store import AnalyticsStore
from hotline.base.config import Settings
from hotline.base.privacy import Pseudonymizer
from hotline.flow.events import ChannelEvent
from hotline.flow.registry import FlowRegistry
from hotline.flow.screen import Turn
from hotline.store.redisurl import open_redis

__all__ = ["RECORDER", "Recorder", "setup"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
REQUEUE_WITHIN = 120.0  # seconds a session without its first turn may wait for it
REQUEUE_DELAY = 1.0  # seconds until such a session is looked at again
FLUSH_CHUNK = 2000  # turns made into facts between two awaits
WARN_EVERY = 60.0  # seconds between two warnings that turns were not recorded
_BREAKER_OPEN = 1.0  # hotline_<service>_breaker_state: 0 closed, 1 open, 2 half-open


class Recorder:
    """One worker's analytics: the observer, the buffer, flush, settle and sample."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: AnalyticsStore,
        flows: FlowRegistry,
        pseudonym: Pseudonymizer,
        metrics: AnalyticsMetrics | None = None,
        registry: CollectorRegistry | None = None,
        session_ttls: Mapping[str, int] | None = None,
        clock: Clock = time.time,
    ) -> None:
        conf = settings.analytics
        self.store = store
        self.flows = flows
        self.pseudonym = pseudonym
        self.metrics = metrics
        self.registry = registry
        self.zone = ZoneInfo(settings.timezone)
        self.settle_after = conf.settle_after
        self.session_ttls = dict(session_ttls or {})
        self.clock = clock
        self.dropped = 0
        self._buffer: deque[Captured] = deque()
        self._limit = conf.buffer
        self._outcomes: dict[tuple[str, str], dict[str, Outcome]] = {}
        self._upstream: dict[str, float] = {}
        self._sampled_at = clock()
        self._warned_at = float("-inf")

    # ------------------------------------------------------- the request path

    def observe(self, event: ChannelEvent, turn: Turn, ends: bool) -> None:
        """The turn observer: a flat tuple into the buffer, nothing else (bench/analytics.py)."""
        buffer = self._buffer
        if len(buffer) < self._limit:
            buffer.append(capture(self.clock(), event, turn, ends))
        else:
            self.dropped += 1

    # ------------------------------------------------------- off the path

    def _outcomes_of(self, flow_id: str, version: str) -> dict[str, Outcome]:
        key = (flow_id, version)
        found = self._outcomes.get(key)
        if found is None:
            flow = self.flows.get(flow_id, version)
            found = end_outcomes(flow) if flow is not None else {}
            if len(self._outcomes) > 1024:  # reloads without end: start afresh
                self._outcomes.clear()
            self._outcomes[key] = found
        return found

    def _due(self, fact: Fact) -> float:
        if fact.ends:
            return fact.ts + self.settle_after
        return fact.ts + self.session_ttls.get(fact.channel, 3600) + self.settle_after

    async def flush(self) -> int:
        """Write the buffered turns to Redis; returns how many were written.

        In chunks of `FLUSH_CHUNK`: the loop serves requests between two (each chunk's
        Redis call is an await), so a backlog never holds the loop for long."""
        buffer = self._buffer
        written = 0
        while buffer:
            taken = [buffer.popleft() for _ in range(min(len(buffer), FLUSH_CHUNK))]
            facts: list[tuple[str, Fact, float]] = []
            for captured in taken:
                fact = make_fact(captured, self.pseudonym, self._outcomes_of)
                if fact is not None:
                    session = f"{captured[1]}:{captured[2]}"
                    facts.append((session, fact, self._due(fact)))
            try:
                await self.store.add_facts(facts)
            except (RedisError, OSError) as exc:
                self._lost(len(facts), exc)
                continue
            written += len(facts)
        return written

    async def settle(self, now: float | None = None) -> int:
        """Roll up the sessions due by `now` (default: the clock); returns how many.

        A claimed session whose first turn is missing is put back for a moment: another
        worker has not flushed it yet (its facts are dropped once they are older than
        `REQUEUE_WITHIN`: that first turn was lost)."""
        now = self.clock() if now is None else now
        settled = 0
        while True:
            claimed = await self.store.claim_due(now)
            if not claimed:
                return settled
            summaries = []
            done = []
            for session, facts in claimed:
                summary = summarize(facts, self.zone)
                if summary is not None:
                    summaries.append(summary)
                    done.append(session)
                elif max(f.ts for f in facts) > self.clock() - REQUEUE_WITHIN:
                    # Due after `now`: this call does not claim it again.
                    due = max(now, self.clock()) + REQUEUE_DELAY
                    await self.store.requeue(session, facts, due)
                else:
                    done.append(session)
            await self.store.add_summaries(summaries)
            await self.store.forget(done)
            if self.metrics is not None:
                for summary in summaries:
                    self.metrics.count(summary)
            settled += len(summaries)

    async def sample(self) -> None:
        """Add what the resilience layers counted since the last sample to today."""
        if self.registry is None:
            return
        now = self.clock()
        totals: dict[str, float] = {}
        open_seconds = 0.0
        for family in self.registry.collect():
            name = family.name
            if not name.startswith("hotline_") or (
                "_cache_" not in name and "_breaker_" not in name
            ):
                continue
            for sample in family.samples:
                if sample.name.endswith("_cache_hits_total"):
                    key = f"cache_{sample.labels.get('result', 'hit')}"
                elif sample.name.endswith("_cache_misses_total"):
                    key = "cache_miss"
                elif sample.name.endswith("_breaker_state"):
                    if sample.value == _BREAKER_OPEN:
                        open_seconds = now - self._sampled_at
                    continue
                else:
                    continue
                service = sample.name.removeprefix("hotline_").split("_cache_")[0]
                full = f"{service}:{key}"
                totals[full] = totals.get(full, 0.0) + sample.value
        delta = {k: v - self._upstream.get(k, 0.0) for k, v in totals.items()}
        if open_seconds:
            delta["breaker_open_seconds"] = round(open_seconds, 3)
        day = dt.datetime.fromtimestamp(now, self.zone).date().isoformat()
        try:
            await self.store.add_upstream(day, delta)
        except (RedisError, OSError) as exc:
            log.warning("analytics: upstream figures not written (%s)", type(exc).__name__)
            return
        self._upstream = totals
        self._sampled_at = now

    def _lost(self, n: int, exc: BaseException) -> None:
        self.dropped += n
        if self.metrics is not None:
            self.metrics.dropped.inc(n)
        now = self.clock()
        if now - self._warned_at >= WARN_EVERY:  # Redis down: one line a minute, not 4 a second
            self._warned_at = now
            log.warning("analytics: %d turns not recorded (%s)", n, type(exc).__name__)

    async def tick(self) -> None:
        """One round of the background work."""
        await self.flush()
        try:
            await self.settle()
        except (RedisError, OSError) as exc:
            log.warning("analytics: settle failed, retried next round (%s)", type(exc).__name__)
        await self.sample()

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die: the next round tries again
                log.exception("analytics: a background round failed")


RECORDER = web.AppKey("ANALYTICS_RECORDER", Recorder)


def setup(app: web.Application) -> None:
    """Register the recorder as a turn observer (`analytics.enabled` with `redis_url`).

    Called by `create_app` after the core's keys exist; the background task starts and
    stops with the app (`_run_ctx`)."""
    from hotline.web.app import FLOWS
    from hotline.web.keys import METRICS, PSEUDONYM, SETTINGS, TURN_OBSERVERS

    settings = app[SETTINGS]
    if not settings.redis_url:
        log.warning("analytics.enabled needs redis_url: no analytics recorded")
        return
    registry = app[METRICS].registry
    recorder = Recorder(
        settings=settings,
        store=AnalyticsStore(
            open_redis(settings.redis_url), settings.env, settings.analytics.retention_days
        ),
        flows=app[FLOWS],
        pseudonym=app[PSEUDONYM],
        metrics=AnalyticsMetrics(registry),
        registry=registry,
        session_ttls={
            "ussd": settings.ussd.session_ttl,
            "ivr": settings.ivr.session_ttl,
            "sms": settings.sms.session_ttl,
        },
    )
    app[RECORDER] = recorder
    if TURN_OBSERVERS not in app:
        app[TURN_OBSERVERS] = []
    app[TURN_OBSERVERS].append(recorder.observe)
    app.cleanup_ctx.append(_run_ctx)


async def _run_ctx(app: web.Application) -> AsyncIterator[None]:
    from hotline.web.keys import SETTINGS

    recorder = app[RECORDER]
    task = asyncio.create_task(recorder.run(app[SETTINGS].analytics.flush_interval))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    try:
        await recorder.flush()  # what this worker saw is not lost at shutdown
    except Exception:
        log.exception("analytics: final flush failed")
    await recorder.store.redis.aclose()
