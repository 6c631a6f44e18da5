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

Every worker writes the same keys: counts add up across workers and hosts. Facts go in
and sessions are claimed by two Lua scripts: a claim is atomic (exactly one worker gets a
session), so a session is rolled up once. The live keys share one hash slot (`{live}`),
as a script's keys must on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from hotline.analytics.facts import Fact
from hotline.analytics.rollup import Summary, add_counts, increments
from hotline.store.redisurl import AnyRedis

__all__ = ["AnalyticsStore"]

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


class AnalyticsStore:
    """The analytics keys of one deployment (`env`) on one Redis."""

    def __init__(self, redis: AnyRedis, env: str, retention_days: int = 400) -> None:
        self.redis = redis
        self.prefix = f"hotline:{env}:an"
        self.retention = retention_days * 86400
        self._add = redis.register_script(_ADD)
        self._claim = redis.register_script(_CLAIM)

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

    # ----------------------------------------------------------------- write

    async def add_facts(self, facts: Sequence[tuple[str, Fact, float]]) -> None:
        """Append `(session, fact, due)`: the fact to the session's list, the session to
        the open set at its due time (one script call per `BATCH` facts)."""
        for at in range(0, len(facts), BATCH):
            items = [
                (session, orjson.dumps(fact.dump()).decode(), due, fact.ts, _ttl(fact, due))
                for session, fact, due in facts[at : at + BATCH]
            ]
            await self._add(
                keys=[self._open_key, self._newest_key],
                args=[self._turns_prefix, orjson.dumps(items)],
            )

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
        fields: dict[str, dict[str, int]] = {}
        distinct: dict[str, set[str]] = {}
        for summary in summaries:
            group = summary.group
            add_counts(fields.setdefault(group.day, {}), increments(summary))
            row = group.prefix
            distinct.setdefault(self.subs_key(group.day, row), set()).add(summary.subscriber)
            for state in summary.visits:
                key = self.subs_key(group.day, f"{row}|{state}")
                distinct.setdefault(key, set()).add(summary.subscriber)
            if summary.score:
                key = self.rated_key(group.day, row)
                distinct.setdefault(key, set()).add(summary.subscriber)
        if not fields:
            return
        pipe = self.redis.pipeline(transaction=False)
        for day, counts in fields.items():
            key = self.day_key(day)
            for name, n in counts.items():
                pipe.hincrby(key, name, n)
            pipe.expire(key, self.retention)
        for key, members in distinct.items():
            pipe.pfadd(key, *members)
            pipe.expire(key, self.retention)
        await pipe.execute()

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


def _ttl(fact: Fact, due: float) -> int:
    return max(int(due - fact.ts), 0) + FACTS_MARGIN


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
