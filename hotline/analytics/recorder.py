"""The turn observer and its background work: record now, count later, mostly here.

On the request path `Recorder.observe` does one thing: it appends `(time, event, turn,
ends)` to an in-memory buffer (a bounded deque; past `analytics.buffer` turns it drops
and counts). Everything else runs in one background task per worker, every
`analytics.flush_interval` seconds, in slices of bounded work with the loop served in
between (`SLICE_TURNS`, `SLICE_SESSIONS`):

1. `flush` — move the buffered turns to their sessions, held in this worker; read the
   other workers' stream entries; write this worker's entry: the sessions it began to
   hold, and its watermark (every turn it saw before that time is named by now);
2. `settle` — summarize each held session that is due (its reply closed the
   conversation `settle_after` seconds ago, or it was quiet for the channel's session
   lifetime) and no other worker may still name (every live worker's watermark is past
   its due time); add the summaries up and write them as one pipeline of counters; then
   claim the split sessions that are due in Redis (below);
3. `sample` — add the upstream figures (cache answers, breaker open time) the
   resilience layers counted since the last sample to today's rollup.

A session's turns usually all reach one worker: it is counted there, and Redis sees a
handful of commands per flush, not per turn. A session split across workers — a worker
got a turn of it that was not its first, or read that another worker named a session it
holds — is *shared*: every worker holding part of it appends those facts to the
session's list in Redis (and names it again, so the others learn too), where one claim
summarizes it from all its facts in time order (`hotline.analytics.store`). At a
graceful stop a worker writes every session it holds that way, so nothing is lost and a
session that continues on another worker is still counted once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import logging
import os
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CollectorRegistry
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from hotline.analytics.facts import Captured, Fact, Outcome, capture, end_outcomes, make_fact
from hotline.analytics.metrics import AnalyticsMetrics
from hotline.analytics.rollup import Rollup, summarize
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
SLICE_TURNS = 100  # buffered turns moved to their sessions between two yields to the loop
SLICE_SESSIONS = 10  # sessions summarized between two yields (~20 µs each)
PEER_TIMEOUT = 10.0  # seconds without a newer watermark before a worker counts as gone
GRACE = 0.5  # seconds past every watermark before a held session is counted (clock skew)
REFRESH_EVERY = 40  # flushes between two renewals of the workers stream's expiry
WARN_EVERY = 60.0  # seconds between two warnings that turns were not recorded
ROUND_TIMEOUT = 60.0  # seconds a background round may take before it is abandoned
STOP_TIMEOUT = 10.0  # seconds a graceful stop may take (the last round, settle, flush)
RECANCEL_EVERY = 0.05  # seconds between two cancels of a task past a stop's deadline
_BREAKER_OPEN = 1.0  # hotline_<service>_breaker_state: 0 closed, 1 open, 2 half-open
_SKIPPED = (("repeated",), ("refused",))  # turns that changed nothing (make_fact: None)
_NEVER = (0, 0)
_ALL = (1 << 62, 0)  # every stream id: what a worker alone has heard


def _starts(captured: Captured) -> bool:
    """Whether this turn began its session (`summarize` counts from there)."""
    events = captured[5]
    return "started" in events or "restarted" in events


class _Held:
    """A session this worker holds: its turns as captured, and when it is due."""

    __slots__ = ("due", "named", "shared", "turns")

    def __init__(self) -> None:
        self.turns: list[Captured] = []
        self.due = 0.0
        self.named = _NEVER  # the stream id of the entry that named it
        self.shared = False  # another worker has turns of it: its facts go to Redis


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
        self.worker = f"{os.getpid()}.{secrets.token_hex(4)}"
        self._buffer: deque[Captured] = deque()
        self._limit = conf.buffer
        self._held: dict[str, _Held] = {}
        self._due: list[tuple[float, str]] = []  # heap of (due, session); stale ones skipped
        # Other workers: their watermark, and how far they have read the stream.
        self._peers: dict[str, tuple[float, tuple[int, int]]] = {}
        self._heard_from = store.stream_id(clock() - PEER_TIMEOUT)
        self._flushes = 0
        self._lock = asyncio.Lock()  # the background round and /admin/analytics/data
        self._outcomes: dict[tuple[str, str], dict[str, Outcome]] = {}
        self._upstream: dict[str, float] = {}
        self._sampled_at = clock()
        self._warned_at = float("-inf")
        self._stopping = asyncio.Event()  # set by `close`: the background loop ends
        self.stop_timeout = STOP_TIMEOUT
        self._task: asyncio.Task[None] | None = None

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

    def _due_after(self, captured: Captured) -> float:
        """When a session whose newest turn is `captured` is due to be counted."""
        ts, channel, kind, ends = captured[0], captured[1], captured[4], captured[9]
        if ends or kind == "hangup":
            return ts + self.settle_after
        return ts + self.session_ttls.get(channel, 3600) + self.settle_after

    def _facts(self, session: str, turns: Sequence[Captured]) -> list[tuple[str, Fact, float]]:
        """What a shared session's turns add to its list in Redis."""
        found = []
        for captured in turns:
            fact = make_fact(captured, self.pseudonym, self._outcomes_of)
            if fact is not None:
                found.append((session, fact, self._due_after(captured)))
        return found

    def _horizon(self, now: float) -> tuple[float, tuple[int, int]]:
        """The time before which every live worker has named every session it holds, and
        the stream id up to which every one has read (and answered) what was named."""
        horizon, acked = now, _ALL
        oldest = self.clock() - PEER_TIMEOUT
        for worker, (mark, ack) in list(self._peers.items()):
            if mark < oldest:  # silent for too long: stopped without a word, or stuck
                del self._peers[worker]
                continue
            horizon = min(horizon, mark - GRACE)
            acked = min(acked, ack)
        return horizon, acked

    async def flush(self) -> int:
        """Move the buffered turns to their sessions and tell the other workers; returns
        how many turns were recorded (those of a flush Redis refused are dropped, counted)."""
        async with self._lock:
            return await self._flush()

    async def _flush(self, *, bye: bool = False) -> int:
        mark = self.clock()
        staged = await self._take()
        try:
            return await self._send(staged, mark, bye)
        except asyncio.CancelledError as exc:  # a stop's deadline: these turns are lost
            self._lost(sum(map(len, staged.values())), exc)
            raise

    async def _send(self, staged: dict[str, list[Captured]], mark: float, bye: bool) -> int:
        """Tell the other workers what `staged` adds, and keep it (`_flush`)."""
        try:
            heard = await self.store.hear(self._heard_from)
        except (RedisError, OSError) as exc:
            self._lost(sum(map(len, staged.values())), exc)
            return 0
        held = self._held
        peers = dict(self._peers)
        share: set[str] = set()
        # What the others said: a session named elsewhere that this worker holds (or is
        # about to) is shared from now on, and named again so the other learns it too.
        for entry in heard:
            if entry.worker == self.worker:
                continue
            if entry.bye:
                peers.pop(entry.worker, None)
            else:
                mark, ack = peers.get(entry.worker, (0.0, _NEVER))
                order = self.store.stream_order(entry.ack)
                peers[entry.worker] = (max(mark, entry.mark), max(ack, order))
            for session in entry.sessions:
                known = held.get(session)
                if (session in staged) if known is None else not known.shared:
                    share.add(session)
        named: list[str] = []
        room = self._limit - len(held)
        dropped = 0
        for session, turns in list(staged.items()):
            if session in held:
                continue
            if room <= 0:  # too many sessions held: this one is not recorded
                dropped += len(turns)
                del staged[session]
                share.discard(session)
                continue
            room -= 1
            named.append(session)
            if not _starts(turns[0]):
                # First seen here at a later turn: split (or its first turn was lost);
                # its facts go to Redis, where its start may be.
                share.add(session)
        if bye:  # stopping: every session held goes to Redis for another to count
            share.update(s for s, known in held.items() if not known.shared)
            share.update(s for s in staged if s not in held)
        ship: list[tuple[str, Fact, float]] = []
        for session, turns in staged.items():
            known = held.get(session)
            if known is not None and known.shared:
                ship.extend(self._facts(session, turns))
        for session in share:
            known = held.get(session)
            turns = known.turns if known is not None else []
            ship.extend(self._facts(session, turns + staged.get(session, [])))
            if known is not None:
                named.append(session)  # new ones are named already
        read = heard[-1].id if heard else self._heard_from
        try:
            written = await self.store.announce(
                self.worker,
                mark,
                read,
                named,
                ship,
                bye=bye,
                refresh=self._flushes % REFRESH_EVERY == 0,
            )
        except (RedisError, OSError) as exc:
            self._lost(sum(map(len, staged.values())), exc)
            return 0
        self._flushes += 1
        self._heard_from = read
        self._peers = peers
        if dropped:
            self._lost(dropped, None)
        return self._keep(staged, share, self.store.stream_order(written))

    async def _take(self) -> dict[str, list[Captured]]:
        """The buffered turns by session, in slices (the loop serves requests between)."""
        buffer = self._buffer
        staged: dict[str, list[Captured]] = {}
        left = len(buffer)  # what was observed before the watermark; later turns wait
        while left:
            n = min(left, SLICE_TURNS)
            left -= n
            for _ in range(n):
                captured = buffer.popleft()
                if captured[5] in _SKIPPED:
                    continue
                session = f"{captured[1]}:{captured[2]}"
                turns = staged.get(session)
                if turns is None:
                    staged[session] = [captured]
                else:
                    turns.append(captured)
            if left:
                await asyncio.sleep(0)
        return staged

    def _keep(
        self, staged: dict[str, list[Captured]], share: set[str], entry: tuple[int, int]
    ) -> int:
        """The recorded turns join their sessions; shared ones keep no turns here (theirs
        are in Redis), only when they are due (then they are forgotten)."""
        held, heap = self._held, self._due
        recorded = 0
        for session, turns in staged.items():
            known = held.get(session)
            if known is None:
                known = held[session] = _Held()
                known.named = entry
            recorded += len(turns)
            if not known.shared:
                known.turns.extend(turns)
            due = self._due_after(turns[-1])
            if due != known.due:
                known.due = due
                heapq.heappush(heap, (due, session))
        for session in share:
            known = held.get(session)
            if known is not None:
                known.shared = True
                known.turns = []
        return recorded

    async def settle(self, now: float | None = None) -> int:
        """Count the sessions due by `now` (default: the clock); returns how many.

        Held sessions first (those every live worker's watermark has passed), then the
        shared ones Redis holds. A claimed shared session whose first turn is missing is
        put back for a moment: another worker has not written it yet (its facts are
        dropped once they are older than `REQUEUE_WITHIN`: that first turn was lost)."""
        async with self._lock:
            now = self.clock() if now is None else now
            until, acked = self._horizon(now)
            settled = await self._settle_held(until, acked)
            return settled + await self._settle_shared(until)

    async def _settle_held(self, until: float, acked: tuple[int, int] = _ALL) -> int:
        held, due, rollup = self._held, self._due, Rollup()
        metrics = self.metrics
        done = 0
        while due and due[0][0] <= until:
            at, session = heapq.heappop(due)
            known = held.get(session)
            if known is None or known.due != at:  # a later turn moved it: another entry
                continue
            if known.named > acked:  # a worker has not read that it is held here: later
                heapq.heappush(due, (at, session))
                break
            del held[session]
            if known.shared or not known.turns:
                continue
            facts = [
                fact
                for captured in known.turns
                if (fact := make_fact(captured, self.pseudonym, self._outcomes_of)) is not None
            ]
            summary = summarize(facts, self.zone) if facts else None
            if summary is None:
                continue
            rollup.add(summary)
            if metrics is not None:
                metrics.count(summary)
            done += 1
            if done % SLICE_SESSIONS == 0:
                await asyncio.sleep(0)
        if rollup:
            try:
                await self.store.add_rollup(rollup)
            except (RedisError, OSError) as exc:
                log.warning(
                    "analytics: %d sessions not counted (%s)", rollup.sessions, type(exc).__name__
                )
                return 0
        return rollup.sessions

    async def _settle_shared(self, now: float) -> int:
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
            await asyncio.sleep(0)

    async def stop(self) -> None:
        """At a graceful stop: count what is due, write every other session this worker
        holds to Redis as a shared one (another worker, or `hotline report --settle`,
        counts it) and tell the others this worker is gone."""
        try:
            await self.settle()
        except (RedisError, OSError) as exc:
            log.warning("analytics: settle at stop failed (%s)", type(exc).__name__)
        async with self._lock:
            await self._flush(bye=True)
            self._held.clear()
            self._due.clear()

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

    def _lost(self, n: int, exc: BaseException | None) -> None:
        self.dropped += n
        if self.metrics is not None:
            self.metrics.dropped.inc(n)
        now = self.clock()
        if now - self._warned_at >= WARN_EVERY:  # Redis down: one line a minute, not 4 a second
            self._warned_at = now
            why = type(exc).__name__ if exc is not None else "too many sessions held"
            log.warning("analytics: %d turns not recorded (%s)", n, why)

    async def tick(self) -> None:
        """One round of the background work."""
        await self.flush()
        try:
            await self.settle()
        except (RedisError, OSError) as exc:
            log.warning("analytics: settle failed, retried next round (%s)", type(exc).__name__)
        await self.sample()

    def start(self, interval: float) -> None:
        """Start the background rounds, one every `interval` seconds (jittered)."""
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self.run(interval), name="analytics-recorder")

    async def run(self, interval: float) -> None:
        """Background rounds until `close` asks this loop to end (or it is cancelled)."""
        stopping = self._stopping
        while not stopping.is_set():
            # Jittered: workers started together do not flush in step (nor stall together).
            try:
                async with asyncio.timeout(interval * random.uniform(0.8, 1.2)):
                    await stopping.wait()
                return  # asked to stop between two rounds
            except TimeoutError:
                pass
            try:
                # A round that cannot finish (a wait nothing ends) must not stop the next.
                async with asyncio.timeout(ROUND_TIMEOUT + interval):
                    await self.tick()
            except TimeoutError:
                log.error(
                    "analytics: a background round took over %.0f s; abandoned", ROUND_TIMEOUT
                )
            except Exception:  # never let the loop die: the next round tries again
                log.exception("analytics: a background round failed")

    async def close(self) -> None:
        """A graceful stop, in order: end the background loop (a round in flight
        finishes: its turns are not lost half-written), write what is left (`stop`), then
        release the Redis client — all within `stop_timeout` seconds, so that Redis gone
        or frozen cannot hold the worker's exit (what could not be written is counted as
        dropped).

        Nothing here waits on a cancel being delivered. The loop is asked to end by an
        event; past the deadline a task is cancelled until it ends (`_end`). redis-py
        bounds a command's send with `asyncio.wait_for`, which on Python 3.11 returns the
        send's result when a cancel arrives just after the send completed: the
        CancelledError is lost and the task goes on. A loop that only a CancelledError
        ended then ran for ever, and so did the app's cleanup that awaited it (the hang
        of a test's teardown under `make test`)."""
        deadline = asyncio.get_running_loop().time() + self.stop_timeout
        self._stopping.set()
        task, self._task = self._task, None
        try:
            if task is not None:
                await _end(task, deadline)
                if not task.cancelled() and task.exception() is not None:
                    log.error("analytics: the background loop failed", exc_info=task.exception())
            final = asyncio.create_task(self.stop(), name="analytics-stop")
            await _end(final, deadline)
            if final.cancelled():  # Redis did not answer in time
                left = len(self._buffer) + sum(len(held.turns) for held in self._held.values())
                self._warned_at = float("-inf")  # the last word is always said
                self._lost(left, TimeoutError())  # at least these (a cut flush counted its own)
            elif final.exception() is not None:
                log.error("analytics: the final flush failed", exc_info=final.exception())
        finally:
            await self.store.redis.aclose()


async def _end(task: asyncio.Task[Any], deadline: float) -> None:
    """Let `task` run until `deadline` (loop time), then cancel it until it has ended.

    Again and again, not once: a cancel that lands just after redis-py sent a command is
    lost on Python 3.11 (`Recorder.close`), and the task goes on to its next wait — which
    the next cancel ends. Every Redis wait has a timeout besides, so this ends either way."""
    loop = asyncio.get_running_loop()
    await asyncio.wait({task}, timeout=max(deadline - loop.time(), 0.0))
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_EVERY)


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
            # Bounded waits: a reply that never comes fails the round (its turns counted as
            # dropped) instead of holding the recorder's lock, and /admin/analytics, forever.
            # One retry, at once (a pooled connection the server closed): the next round
            # is the recorder's retry; redis-py's default (10, backing off) made a round,
            # and a stop, with Redis gone last ~10 s.
            open_redis(
                settings.redis_url,
                socket_timeout=5.0,
                socket_connect_timeout=2.0,
                retry=Retry(NoBackoff(), 1),
            ),
            settings.env,
            settings.analytics.retention_days,
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
    recorder.start(app[SETTINGS].analytics.flush_interval)
    try:
        yield
    finally:
        await recorder.close()  # what this worker saw and holds is not lost at shutdown
