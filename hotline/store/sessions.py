"""Session stores: Redis for production, in-process for one worker (DESIGN.md §7).

A step costs at most two round trips: one read of the session and the subscriber's
preferences (`MGET`; a pipeline on Redis Cluster, where the two keys live in different
hash slots), one write (a plain `SET … EX` unless the preferences changed). Keys never hold a phone number:
`hotline:{env}:sess:{channel}:{gateway session id}` and `hotline:{env}:sub:{pseudonym}`.

Resume (a dropped USSD session continued from a new dial): the last resumable step of a
subscriber's session on a channel is kept under `hotline:{env}:resume:{channel}:{pseudonym}`
for the resume window. A dial reads it in the same `MGET` (`load_step`), a step writes or
deletes it in the same pipeline as the session (`save(…, resume=…)`): still two round
trips.
Network failures become `SessionStoreUnavailable` here, at the store's edge.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, fields
from typing import Any, Final, Protocol, cast

import orjson
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from hotline.base.errors import SessionStoreUnavailable
from hotline.store.redislink import RedisLink, RedisReplyError, link_address
from hotline.store.redisurl import AnyRedis, open_redis

__all__ = [
    "MemorySessionStore",
    "RedisSessionStore",
    "ResumeWrite",
    "SessionRecord",
    "SessionStore",
    "resume_key",
    "session_key",
    "subscriber_key",
]

PREFS_TTL = 400 * 24 * 3600  # a language choice outlives any session, but not forever
REPLY_TIMEOUT = 0.5  # seconds; past it the subscriber gets the busy sentence at once
SWEEP_ABOVE = 10_000  # in-process sessions held before expired ones are swept


# What talking to Redis can raise (RedisLinkError is an OSError).
_FAILURES = (RedisError, OSError, RedisReplyError)


def session_key(env: str, channel: str, session_id: str) -> str:
    return f"hotline:{env}:sess:{channel}:{session_id}"


def subscriber_key(env: str, pseudonym: str) -> str:
    return f"hotline:{env}:sub:{pseudonym}"


def resume_key(env: str, channel: str, pseudonym: str) -> str:
    return f"hotline:{env}:resume:{channel}:{pseudonym}"


@dataclass(frozen=True, slots=True)
class ResumeWrite:
    """What a save does to the resume key: set `record` for `ttl` seconds, or delete it."""

    key: str
    record: bytes | None  # None: delete
    ttl: int = 0


@dataclass(slots=True)
class SessionRecord:
    """Everything the engine needs to continue a conversation; stored as compact JSON.

    It holds what is needed to show the last screen again — state, variables, page,
    language, notice — never wire text: a repeated request is rendered again from it.
    `pages` is how many pages the channel made of the last screen (so `more` on the
    last page is an invalid choice). `owner` binds the session to the channel, dialect,
    entry and subscriber (a pseudonym) that started it. `resume` says what the resume key
    holds for this session: `""` nothing known, `"saved"` a copy of a resumable step (or
    one found at the dial), `"offered"` the dial is offering to continue it.
    """

    flow: str
    version: str
    state: str
    language: str
    vars: dict[str, Any] = field(default_factory=dict)
    page: int = 0
    pages: int = 1
    back: list[str] = field(default_factory=list)
    request_id: str | None = None
    invalid: int = 0
    notice: str = ""
    final: str = ""
    no_input: int = 0
    ended: bool = False
    owner: str = ""
    started: float = field(default_factory=time.time)
    resume: str = ""

    def dumps(self) -> bytes:
        """The stored form: compact JSON as UTF-8 bytes."""
        # The fields spelled out, in order: `dataclasses.asdict` deep-copied `vars` and
        # cost half of a step's CPU once, and orjson's own dataclass support reads the
        # instance's memory as a plain class's, which a compiled class (setup.py) is not.
        return orjson.dumps(
            {
                "flow": self.flow,
                "version": self.version,
                "state": self.state,
                "language": self.language,
                "vars": self.vars,
                "page": self.page,
                "pages": self.pages,
                "back": self.back,
                "request_id": self.request_id,
                "invalid": self.invalid,
                "notice": self.notice,
                "final": self.final,
                "no_input": self.no_input,
                "ended": self.ended,
                "owner": self.owner,
                "started": self.started,
                "resume": self.resume,
            }
        )

    @classmethod
    def loads(cls, raw: str | bytes) -> SessionRecord:
        """Parse a stored record; raises `ValueError` on anything malformed.

        Field types are checked here, so a corrupt record is an unknown session state
        (a polite end) rather than an error deep inside the engine.
        """
        try:
            data = orjson.loads(raw)  # invalid UTF-8 is a JSONDecodeError too
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"malformed session record: {exc}") from exc
        # The fast path: a record as `dumps` wrote it. orjson makes exact built-in types,
        # so one set lookup of all field types checks it (`type(x) is int` refuses a
        # bool), and positional arguments avoid matching keyword names.
        if type(data) is dict and tuple(data) == _FIELDS:
            values = data.values()
            if tuple(map(type, values)) in _ACCEPTED:
                return _check_back(cls(*values))
        if type(data) is not dict:
            raise ValueError("malformed session record: not an object")
        try:
            record = cls(**data)
        except TypeError as exc:
            raise ValueError(f"malformed session record: {exc}") from exc
        for name, kinds in zip(_FIELDS, _KINDS, strict=True):
            if type(getattr(record, name)) not in kinds:
                raise ValueError(f"malformed session record: {name} has the wrong type")
        return _check_back(record)


def _check_back(record: SessionRecord) -> SessionRecord:
    # Read as objects: a compiled `list[str]` would raise TypeError on the first non-str.
    for state in cast("list[object]", record.back):
        if type(state) is not str:
            raise ValueError("malformed session record: back holds a non-state")
    return record


# The field names in order (compiled classes have no `__slots__` to read them from) and
# the exact types each field may have, in that order.
_FIELDS: Final = tuple(f.name for f in fields(SessionRecord))
_KINDS: tuple[tuple[type, ...], ...] = (
    (str,),  # flow
    (str,),  # version
    (str,),  # state
    (str,),  # language
    (dict,),  # vars
    (int,),  # page
    (int,),  # pages
    (list,),  # back
    (str, type(None)),  # request_id
    (int,),  # invalid
    (str,),  # notice
    (str,),  # final
    (int,),  # no_input
    (bool,),  # ended
    (str,),  # owner
    (float, int),  # started
    (str,),  # resume
)
_ACCEPTED = frozenset(itertools.product(*_KINDS))


Prefs = dict[str, str]


class SessionStore(Protocol):
    """Where sessions and subscriber preferences live."""

    async def load(self, key: str, sub_key: str) -> tuple[bytes | None, Prefs]:
        """The session record as stored (or None) and the subscriber's preferences."""
        ...

    async def load_step(
        self, key: str, sub_key: str, resume: str
    ) -> tuple[bytes | None, Prefs, bytes | None]:
        """`load`, and the resume key's record (or None), in the same round trip."""
        ...

    async def save(
        self,
        key: str,
        record: bytes,
        ttl: int,
        sub_key: str,
        prefs: Prefs | None,
        resume: ResumeWrite | None = None,
    ) -> None:
        """Write the session record with a TTL and, when given, replace the preferences
        and set or delete the resume key (one round trip)."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class MemorySessionStore:
    """In-process store with TTLs; correct for a single worker only."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._sessions: dict[str, tuple[float, bytes]] = {}
        self._prefs: dict[str, tuple[float, Prefs]] = {}
        self._resume: dict[str, tuple[float, bytes]] = {}
        self._clock = clock
        self._sweep_above = SWEEP_ABOVE

    async def load(self, key: str, sub_key: str) -> tuple[bytes | None, Prefs]:
        entry = self._sessions.get(key)
        record = None
        if entry is not None:
            expires, record = entry
            if expires <= self._clock():
                del self._sessions[key]
                record = None
        prefs = self._prefs.get(sub_key)
        if prefs is None or prefs[0] <= self._clock():
            return record, {}
        return record, dict(prefs[1])

    async def load_step(
        self, key: str, sub_key: str, resume: str
    ) -> tuple[bytes | None, Prefs, bytes | None]:
        record, prefs = await self.load(key, sub_key)
        entry = self._resume.get(resume)
        if entry is None or entry[0] <= self._clock():
            self._resume.pop(resume, None)
            return record, prefs, None
        return record, prefs, entry[1]

    async def save(
        self,
        key: str,
        record: bytes,
        ttl: int,
        sub_key: str,
        prefs: Prefs | None,
        resume: ResumeWrite | None = None,
    ) -> None:
        now = self._clock()
        if len(self._sessions) > self._sweep_above:
            # Sweep expired sessions now and then so abandoned ones do not pile up. The
            # next sweep waits until the live ones have doubled: sweeping on every save
            # once more than SWEEP_ABOVE sessions were live made each save O(sessions).
            self._sessions = {k: v for k, v in self._sessions.items() if v[0] > now}
            self._prefs = {k: v for k, v in self._prefs.items() if v[0] > now}
            self._resume = {k: v for k, v in self._resume.items() if v[0] > now}
            self._sweep_above = max(SWEEP_ABOVE, 2 * len(self._sessions))
        self._sessions[key] = (now + ttl, record)
        if prefs is not None:
            self._prefs[sub_key] = (now + PREFS_TTL, dict(prefs))
        if resume is not None:
            if resume.record is None:
                self._resume.pop(resume.key, None)
            else:
                self._resume[resume.key] = (now + resume.ttl, resume.record)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._sessions.clear()
        self._resume.clear()


class RedisSessionStore:
    """Sessions in Redis, one client per worker.

    Plain `redis://` and `unix://` servers are spoken to over one pipelined connection
    (`hotline.store.redislink`: about a tenth of redis-py's client CPU per call, measured); TLS, Sentinel
    and Cluster URLs use redis-py's client, which knows how to follow them.
    """

    def __init__(self, client: AnyRedis | RedisLink) -> None:
        self._link = client if isinstance(client, RedisLink) else None
        self._redis = None if isinstance(client, RedisLink) else client
        # MGET of keys in different hash slots fails on a Cluster (CROSSSLOT).
        self._cluster = isinstance(client, RedisCluster)

    @classmethod
    def from_url(cls, url: str, timeout: float = REPLY_TIMEOUT) -> RedisSessionStore:
        """`redis://`, `rediss://`, `unix://`, `redis+sentinel://`, `redis+cluster://`
        (hotline.store.redisurl documents the forms); `timeout` bounds every reply and
        connection (the `redis_timeout` setting)."""
        address = link_address(url)
        if address is not None:
            return cls(RedisLink(address, timeout=timeout, connect_timeout=timeout))
        client = open_redis(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=15,
            max_connections=256,
            decode_responses=False,
        )
        return cls(client)

    async def load(self, key: str, sub_key: str) -> tuple[bytes | None, Prefs]:
        raw, prefs, _ = await self._load(key, sub_key, None)
        return raw, prefs

    async def load_step(
        self, key: str, sub_key: str, resume: str
    ) -> tuple[bytes | None, Prefs, bytes | None]:
        return await self._load(key, sub_key, resume)

    async def _load(
        self, key: str, sub_key: str, resume: str | None
    ) -> tuple[bytes | None, Prefs, bytes | None]:
        keys = (key, sub_key) if resume is None else (key, sub_key, resume)
        try:
            if self._link is not None:
                found = await self._link.execute("MGET", *keys)
            elif self._cluster:
                assert self._redis is not None
                async with self._redis.pipeline(transaction=False) as pipe:
                    for name in keys:
                        pipe.get(name)
                    found = await pipe.execute()
            else:
                assert self._redis is not None
                found = await self._redis.mget(*keys)
        except _FAILURES as exc:
            raise SessionStoreUnavailable(type(exc).__name__) from exc
        raw, raw_prefs = found[0], found[1]
        prefs: Prefs = {}
        if raw_prefs:
            try:
                loaded = orjson.loads(raw_prefs)
                if isinstance(loaded, dict):
                    prefs = {str(k): str(v) for k, v in loaded.items()}
            except orjson.JSONDecodeError:
                prefs = {}
        # Bytes as stored: `SessionRecord.loads` reads them, and refuses corrupt ones.
        return raw, prefs, (found[2] if resume is not None else None)

    async def save(
        self,
        key: str,
        record: bytes,
        ttl: int,
        sub_key: str,
        prefs: Prefs | None,
        resume: ResumeWrite | None = None,
    ) -> None:
        commands: list[tuple[str | bytes | int, ...]] = [("SET", key, record, "EX", ttl)]
        if prefs is not None:
            commands.append(("SET", sub_key, orjson.dumps(prefs), "EX", PREFS_TTL))
        if resume is not None:
            if resume.record is None:
                commands.append(("DEL", resume.key))
            else:
                commands.append(("SET", resume.key, resume.record, "EX", resume.ttl))
        try:
            if self._link is not None:
                if len(commands) == 1:
                    await self._link.execute(*commands[0])
                else:
                    await self._link.execute_many(*commands)
                return
            assert self._redis is not None
            if len(commands) == 1:
                await self._redis.set(key, record, ex=ttl)
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                await pipe.execute()
        except _FAILURES as exc:
            raise SessionStoreUnavailable(type(exc).__name__) from exc

    async def ping(self) -> bool:
        try:
            if self._link is not None:
                return bool(await self._link.execute("PING") == b"PONG")
            assert self._redis is not None
            return bool(await self._redis.ping())
        except _FAILURES:
            return False

    async def close(self) -> None:
        if self._link is not None:
            await self._link.close()
        else:
            assert self._redis is not None
            await self._redis.aclose()
