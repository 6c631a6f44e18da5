"""Where analytics lives in Redis, and the few operations on it.

Keys (no phone number anywhere; sessions by the gateway's session id, subscribers by
keyed pseudonym inside HyperLogLogs only):

- `hotline:{env}:an:turns:{channel}:{session id}` — a list of a live session's facts
  (JSON arrays), until the session settles; expires with a margin past any session.
- `hotline:{env}:an:open` — sorted set of live sessions (`{channel}:{session id}`),
  scored by when they are due to settle: soon after a reply closed the conversation
  (`analytics.settle_after`), else after the channel's session lifetime.
- `hotline:{env}:an:day:{YYYY-MM-DD}` — the day's counters (`hotline.analytics.rollup`).
- `hotline:{env}:an:subs:{day}:{channel}|{flow}|{version}[|{state}]` and
  `…:an:rated:{day}:{channel}|{flow}|{version}` — HyperLogLogs of the subscribers each
  row and each funnel state describe, and of survey respondents (the minimum group size).

- `hotline:{env}:an:{live}:workers` — a stream where each worker says, every flush, which
  sessions it began to hold and up to when it has said so (its watermark): how workers find
  the few sessions whose turns went to more than one of them (`hotline.analytics.recorder`).

A session whose turns all reached one worker is summarized in that worker and only its
figures reach Redis (`add_rollup`: one pipeline of counter increments per flush). A
session split across workers has its facts appended to its list here and is claimed by
two Lua scripts: a claim is atomic (exactly one worker gets a session), so a session is
rolled up once. The live keys share one hash slot (`{live}`), as a script's keys must on
Redis Cluster. Every worker adds to the same counters: counts add up across workers and
hosts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hotline.analytics.facts import Fact
from hotline.analytics.rollup import Rollup, Summary
from hotline.store.redisurl import AnyRedis

__all__ = ["AnalyticsStore", "Heard"]

FACTS_MARGIN = 600  # seconds a fact list outlives its settle time (a stuck settle)

# Append facts (one call per flush); a session's due time follows its newest turn by the
# turn's own clock, not by which worker flushed last (two workers flush in any order).
# KEYS: open zset, newest zset. ARGV: turns key prefix, then one JSON array of
# [session, fact (JSON text), due, ts, expire seconds] (one argument: redis-py encodes
# each argument on its own, which cost more than the script). The turns keys share the
# zsets' hash slot (`{live}`).
_ADD = """
local prefix = ARGV[1]
for _, item in ipairs(cjson.decode(ARGV[2])) do
  local session, ts = item[1], item[4]
  local key = prefix .. session
  redis.call('RPUSH', key, item[2])
  redis.call('EXPIRE', key, item[5])
  local newest = redis.call('ZSCORE', KEYS[2], session)
  if (not newest) or ts >= tonumber(newest) then
    redis.call('ZADD', KEYS[2], ts, session)
    redis.call('ZADD', KEYS[1], item[3], session)
  end
end
return 1
"""
# Claim the sessions due by now, atomically (one caller gets each), with their facts.
# KEYS: open zset. ARGV: now, limit, turns key prefix. Returns session, facts, session, …
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, session in ipairs(due) do
  redis.call('ZREM', KEYS[1], session)
  local key = ARGV[3] .. session
  out[#out + 1] = session
  out[#out + 1] = redis.call('LRANGE', key, 0, -1)
  redis.call('DEL', key)
end
return out
"""
BATCH = 1000  # facts per script call (Redis runs a call whole: keep each short)
STREAM_KEEP = 120.0  # seconds of worker entries kept (a reader further behind misses some)
STREAM_TTL = 3600  # the stream outlives its last writer by this much
READ_COUNT = 1000  # worker entries read at most per call (the rest at the next flush)


@dataclass(frozen=True, slots=True)
class Heard:
    """One worker's stream entry: who, its watermark, how far it had read the stream
    (`ack`, a stream id), the sessions it named, whether it is leaving."""

    id: str
    worker: str
    mark: float
    ack: str
    sessions: list[str]
    bye: bool


class AnalyticsStore:
    """The analytics keys of one deployment (`env`) on one Redis."""

    def __init__(self, redis: AnyRedis, env: str, retention_days: int = 400) -> None:
        self.redis = redis
        self.prefix = f"hotline:{env}:an"
        self.retention = retention_days * 86400
        self._add = redis.register_script(_ADD)
        self._claim = redis.register_script(_CLAIM)
        self._expiring: set[str] = set()

    # ------------------------------------------------------------------ keys

    def day_key(self, day: str) -> str:
        return f"{self.prefix}:day:{day}"

    def subs_key(self, day: str, row: str) -> str:
        return f"{self.prefix}:subs:{day}:{row}"

    def rated_key(self, day: str, row: str) -> str:
        return f"{self.prefix}:rated:{day}:{row}"

    # The live keys share one hash slot (`{live}`): the add script touches three at once.
    @property
    def _turns_prefix(self) -> str:
        return f"{self.prefix}:{{live}}:turns:"

    def _turns_key(self, session: str) -> str:
        return self._turns_prefix + session

    @property
    def _open_key(self) -> str:
        return f"{self.prefix}:{{live}}:open"

    @property
    def _newest_key(self) -> str:
        return f"{self.prefix}:{{live}}:newest"

    @property
    def _workers_key(self) -> str:
        return f"{self.prefix}:{{live}}:workers"

    # ----------------------------------------------------------------- write

    async def add_facts(self, facts: Sequence[tuple[str, Fact, float]]) -> None:
        """Append `(session, fact, due)`: the fact to the session's list, the session to
        the open set at its due time (one script call per `BATCH` facts)."""
        for at in range(0, len(facts), BATCH):
            await self._add(
                keys=[self._open_key, self._newest_key],
                args=[self._turns_prefix, _items(facts[at : at + BATCH])],
            )

    async def announce(
        self,
        worker: str,
        mark: float,
        ack: str,
        sessions: Sequence[str],
        facts: Sequence[tuple[str, Fact, float]] = (),
        *,
        bye: bool = False,
        refresh: bool = False,
    ) -> str:
        """One worker's flush: the facts of split sessions (as `add_facts`), then its
        stream entry — the sessions it began to hold, its watermark `mark` (every turn it
        saw before `mark` is named by now), `ack` (it has read, and answered, every entry
        up to this id), `bye` when it stops. One round trip; a transaction when facts go
        with it (all or nothing: a failed flush is dropped whole). `refresh` renews the
        stream's expiry. Returns the entry's id."""
        pipe = self.redis.pipeline(transaction=bool(facts))
        for at in range(0, len(facts), BATCH):
            await self._add(
                keys=[self._open_key, self._newest_key],
                args=[self._turns_prefix, _items(facts[at : at + BATCH])],
                client=pipe,  # type: ignore[arg-type]  # pipelines are accepted
            )
        entry: dict[str | bytes, str | bytes] = {"w": worker, "t": repr(mark), "r": ack}
        if sessions:
            entry["s"] = orjson.dumps(list(sessions))
        if bye:
            entry["bye"] = "1"
        pipe.xadd(self._workers_key, entry, minid=_stream_id(mark - STREAM_KEEP))  # type: ignore[arg-type]
        if refresh:
            pipe.expire(self._workers_key, STREAM_TTL)
        replies = await pipe.execute()
        return _text(replies[-2 if refresh else -1])

    async def hear(self, after: str) -> list[Heard]:
        """The workers' stream entries after id `after` (at most `READ_COUNT`)."""
        reply: Any = await self.redis.xread({self._workers_key: after}, count=READ_COUNT)
        found: list[Heard] = []
        for _stream, entries in reply or ():
            for raw_id, fields in entries:
                values = {_text(k): v for k, v in fields.items()}
                try:
                    sessions = orjson.loads(values["s"]) if "s" in values else []
                    heard = Heard(
                        _text(raw_id),
                        _text(values["w"]),
                        float(values["t"]),
                        _text(values.get("r", b"0-0")),
                        [str(s) for s in sessions],
                        "bye" in values,
                    )
                except (KeyError, ValueError, TypeError, orjson.JSONDecodeError):
                    continue  # not an entry a worker wrote: skipped
                found.append(heard)
        return found

    @staticmethod
    def stream_id(ts: float) -> str:
        """The stream id of the time `ts` (to start reading from)."""
        return _stream_id(ts)

    @staticmethod
    def stream_order(stream_id: str) -> tuple[int, int]:
        """A stream id as something that sorts as the stream does."""
        ms, _, seq = stream_id.partition("-")
        return int(ms), int(seq or 0)

    async def requeue(self, session: str, facts: list[Fact], due: float) -> None:
        """Put a claimed session's facts back, due again at `due` (its first turn is
        still on its way from another worker)."""
        await self.add_facts([(session, fact, due) for fact in facts])
        await self.redis.zadd(self._open_key, {session: due})

    async def add_upstream(self, day: str, figures: dict[str, float]) -> None:
        """Add sampled upstream figures (`up|<metric>`) to a day."""
        figures = {k: v for k, v in figures.items() if v}
        if not figures:
            return
        pipe = self.redis.pipeline(transaction=False)
        key = self.day_key(day)
        for metric, value in figures.items():
            pipe.hincrbyfloat(key, f"up|{metric}", value)
        pipe.expire(key, self.retention)
        await pipe.execute()

    async def claim_due(self, now: float, limit: int = 500) -> list[tuple[str, list[Fact]]]:
        """Take the sessions due by `now` (each claimed by one caller only) with their
        facts; their lists are deleted."""
        reply: list[Any] = await self._claim(
            keys=[self._open_key], args=[now, limit, self._turns_prefix]
        )
        found: list[tuple[str, list[Fact]]] = []
        for session, raw_list in zip(reply[0::2], reply[1::2], strict=True):
            facts = []
            for raw in raw_list:
                try:
                    facts.append(Fact.load(orjson.loads(raw)))
                except (ValueError, orjson.JSONDecodeError):
                    continue
            if facts:
                found.append((_text(session), facts))
        return found

    async def forget(self, sessions: Sequence[str]) -> None:
        """Drop settled sessions from the newest-turn index."""
        if sessions:
            await self.redis.zrem(self._newest_key, *sessions)

    async def add_summaries(self, summaries: Iterable[Summary]) -> None:
        """Roll settled sessions up into their days' counters and distinct counts."""
        rollup = Rollup()
        for summary in summaries:
            rollup.add(summary)
        await self.add_rollup(rollup)

    async def add_rollup(self, rollup: Rollup) -> None:
        """Write what `rollup` gathered: one `HINCRBY` per counter, one `PFADD` per
        distinct-subscriber key, in one pipeline."""
        if not rollup:
            return
        pipe = self.redis.pipeline(transaction=False)
        for day, counts in rollup.fields.items():
            key = self.day_key(day)
            for name, n in counts.items():
                pipe.hincrby(key, name, n)
            self._expire(pipe, key)
        for (kind, day, row), members in rollup.distinct.items():
            key = self.rated_key(day, row) if kind == "rated" else self.subs_key(day, row)
            pipe.pfadd(key, *members)
            self._expire(pipe, key)
        await pipe.execute()

    def _expire(self, pipe: Any, key: str) -> None:
        # Once per key and process: the keys are per day, so the expiry counts from the
        # day's first write here rather than its last (a day apart at most).
        if key in self._expiring:
            return
        if len(self._expiring) > 100_000:
            self._expiring.clear()
        self._expiring.add(key)
        pipe.expire(key, self.retention)

    # ------------------------------------------------------------------ read

    async def days(self, days: Sequence[str]) -> dict[str, dict[str, float]]:
        """Each day's counters (`{field: value}`; days without any: empty)."""
        pipe = self.redis.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(self.day_key(day))
        found: dict[str, dict[str, float]] = {}
        for day, raw in zip(days, await pipe.execute(), strict=True):
            found[day] = {_text(k): float(v) for k, v in raw.items()}
        return found

    async def distinct(self, key_sets: Sequence[Sequence[str]]) -> list[int]:
        """The number of distinct subscribers over each set of HyperLogLog keys."""
        pipe = self.redis.pipeline(transaction=False)
        for keys in key_sets:
            pipe.pfcount(*keys)
        counts: list[Any] = await pipe.execute() if key_sets else []
        return [int(n) for n in counts]

    async def open_sessions(self) -> int:
        """Sessions seen but not settled yet."""
        n: int = await self.redis.zcard(self._open_key)
        return n


def _items(facts: Sequence[tuple[str, Fact, float]]) -> bytes:
    """The add script's one argument."""
    return orjson.dumps(
        [
            (session, orjson.dumps(fact.dump()).decode(), due, fact.ts, _ttl(fact, due))
            for session, fact, due in facts
        ]
    )


def _stream_id(ts: float) -> str:
    return f"{max(int(ts * 1000), 0)}-0"


def _ttl(fact: Fact, due: float) -> int:
    return max(int(due - fact.ts), 0) + FACTS_MARGIN


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
