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

Every worker writes the same keys: counts add up across workers and hosts. Settling is
claimed per session with `ZREM` (exactly one worker gets 1), so a session is rolled up
once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from hotline.analytics.facts import Fact
from hotline.analytics.rollup import Summary, increments
from hotline.store.redisurl import AnyRedis

__all__ = ["AnalyticsStore"]

FACTS_MARGIN = 600  # seconds a fact list outlives its settle time (a stuck settle)


class AnalyticsStore:
    """The analytics keys of one deployment (`env`) on one Redis."""

    def __init__(self, redis: AnyRedis, env: str, retention_days: int = 400) -> None:
        self.redis = redis
        self.prefix = f"hotline:{env}:an"
        self.retention = retention_days * 86400

    # ------------------------------------------------------------------ keys

    def day_key(self, day: str) -> str:
        return f"{self.prefix}:day:{day}"

    def subs_key(self, day: str, row: str) -> str:
        return f"{self.prefix}:subs:{day}:{row}"

    def rated_key(self, day: str, row: str) -> str:
        return f"{self.prefix}:rated:{day}:{row}"

    def _turns_key(self, session: str) -> str:
        return f"{self.prefix}:turns:{session}"

    @property
    def _open_key(self) -> str:
        return f"{self.prefix}:open"

    # ----------------------------------------------------------------- write

    async def add_facts(self, facts: Sequence[tuple[str, Fact, float]]) -> None:
        """Append `(session, fact, due)` in one pipeline: the fact to the session's list,
        the session to the open set at its due time."""
        if not facts:
            return
        pipe = self.redis.pipeline(transaction=False)
        for session, fact, due in facts:
            key = self._turns_key(session)
            pipe.rpush(key, orjson.dumps(fact.dump()))
            pipe.expire(key, int(due - fact.ts) + FACTS_MARGIN)
            pipe.zadd(self._open_key, {session: due})
        await pipe.execute()

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

    async def claim_due(self, now: float, limit: int = 500) -> list[list[Fact]]:
        """Take the sessions due by `now` (each claimed by one caller only) with their
        facts; their lists are deleted."""
        due: list[Any] = await self.redis.zrangebyscore(
            self._open_key, "-inf", now, start=0, num=limit
        )
        if not due:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for session in due:
            pipe.zrem(self._open_key, session)
        won = [s for s, n in zip(due, await pipe.execute(), strict=True) if n]
        if not won:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for session in won:
            key = self._turns_key(session.decode())
            pipe.lrange(key, 0, -1)
            pipe.delete(key)
        replies = await pipe.execute()
        found: list[list[Fact]] = []
        for raw_list in replies[0::2]:
            facts = []
            for raw in raw_list:
                try:
                    facts.append(Fact.load(orjson.loads(raw)))
                except (ValueError, orjson.JSONDecodeError):
                    continue
            if facts:
                found.append(facts)
        return found

    async def add_summaries(self, summaries: Iterable[Summary]) -> None:
        """Roll settled sessions up into their days' counters and distinct counts."""
        fields: dict[str, Counter[str]] = {}
        distinct: dict[str, set[str]] = {}
        for summary in summaries:
            group = summary.group
            fields.setdefault(group.day, Counter()).update(increments(summary))
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
