"""One answer per incoming message, however often the gateway delivers it.

smsbox calls the get-url again when it got no answer in time (`http-request-retry`), and
an SMSC redelivers a `deliver_sm` whose response it missed. The thread's recent ids
(`sms.conversation`) catch a redelivery that comes after the first was answered; this
ledger catches the one that races the first. Each MO that carries a gateway message id
is *claimed* atomically (`SET NX` with a TTL, `sms.mo_dedupe_ttl`) under a key named by a
keyed hash of the subscriber's pseudonym, the service number, the id and the text —
no number, no text in clear:

    hotline:{env}:sms:mo:{digest}   P… (being answered) │ S (answered) │ L<reply> (lost)

- The first delivery wins the claim, answers, and records `S` — or `L` with the reply
  when the gateway hung up before it was done (smsbox gave up on a slow answer: that
  reply reached nobody).
- A later delivery waits (up to `RACE_WAIT`) while the first is being answered, then
  takes a lost reply (once, atomically: `L…` becomes `S`) or answers nothing.

So the subscriber gets the reply once: from the first call when smsbox was still
listening, else from the retry. On SMPP the reply is a `submit_sm` of its own, never
lost with the `deliver_sm_resp`, so a redelivery there always answers nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from hotline.store.redislink import RedisLink, RedisReplyError, link_address
from hotline.store.redisurl import AnyRedis, open_redis
from hotline.web.keys import PSEUDONYM, SETTINGS
from sms.conversation import IncomingSms, answer_or_apology
from sms.keys import hashed_key
from sms.render import SmsLayout, SmsText
from sms.segments import segment

__all__ = [
    "MO_LEDGER",
    "MemoryMoLedger",
    "MoLedger",
    "RedisMoLedger",
    "answer_once",
    "ledger_ctx",
    "mo_key",
    "open_ledger",
    "reply_once",
]

log = logging.getLogger(__name__)

PENDING = b"P"
ANSWERED = b"S"
LOST = b"L"
RACE_WAIT = 30.0  # seconds a redelivery waits for the first delivery's answer
POLL = 0.05

# GET the key; if it holds a lost reply, mark it answered (keeping its TTL) and return it.
_TAKE_LOST = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'L' then
  redis.call('SET', KEYS[1], 'S', 'KEEPTTL')
end
return v
"""


class MoLedger(Protocol):
    """Where claims live: Redis across workers, or this process alone."""

    async def claim(self, key: str, ttl: int) -> bool:
        """True when this delivery is the first (the key did not exist)."""
        ...

    async def record(self, key: str, value: bytes, ttl: int) -> None: ...

    async def take(self, key: str) -> bytes | None:
        """The key's value; a lost reply (`L…`) is handed out once (it becomes `S`)."""
        ...

    async def close(self) -> None: ...


def mo_key(env: str, pseudonym: str, receiver: str, message_id: str, text: str) -> str:
    """The claim's key: a hash of who wrote, to which number, the gateway's id and the text."""
    return hashed_key(env, "mo", pseudonym, receiver, message_id, text)


class MemoryMoLedger:
    """Claims in this process (single worker, no Redis), with the same TTLs."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._clock = clock

    def _live(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    async def claim(self, key: str, ttl: int) -> bool:
        if self._live(key) is not None:
            return False
        if len(self._entries) > 10_000:  # now and then: drop the expired ones
            now = self._clock()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries[key] = (self._clock() + ttl, PENDING)
        return True

    async def record(self, key: str, value: bytes, ttl: int) -> None:
        self._entries[key] = (self._clock() + ttl, value)

    async def take(self, key: str) -> bytes | None:
        value = self._live(key)
        if value is not None and value.startswith(LOST):
            self._entries[key] = (self._entries[key][0], ANSWERED)
        return value

    async def close(self) -> None:
        self._entries.clear()


class RedisMoLedger:
    """Claims in Redis (`SET NX EX`; the hand-out of a lost reply is one Lua script).

    A plain `redis://` or `unix://` server is spoken to over hotline's pipelined link
    (`hotline.store.redislink`, as the sessions are: measured cheaper per call); TLS,
    Sentinel and Cluster URLs through redis-py. The pending mark carries a token of its
    own and is read back in the same round trip, so a claim the link re-sent after a
    dropped connection is still recognised as ours.
    """

    def __init__(self, client: AnyRedis | RedisLink) -> None:
        self._link = client if isinstance(client, RedisLink) else None
        self._redis = None if isinstance(client, RedisLink) else client

    @classmethod
    def from_url(cls, url: str) -> RedisMoLedger:
        address = link_address(url)
        if address is not None:
            return cls(RedisLink(address, timeout=2.0, connect_timeout=2.0))
        return cls(open_redis(url, socket_timeout=2.0, socket_connect_timeout=2.0))

    async def _many(self, *commands: tuple[str | bytes | int, ...]) -> list[Any]:
        if self._link is not None:
            return await self._link.execute_many(*commands)
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())

    async def claim(self, key: str, ttl: int) -> bool:
        mark = PENDING + uuid.uuid4().bytes
        _, value = await self._many(("SET", key, mark, "NX", "EX", ttl), ("GET", key))
        return bool(value == mark)

    async def record(self, key: str, value: bytes, ttl: int) -> None:
        await self._many(("SET", key, value, "EX", ttl))

    async def take(self, key: str) -> bytes | None:
        (value,) = await self._many(("EVAL", _TAKE_LOST, 1, key))
        return value if isinstance(value, bytes) else None

    async def close(self) -> None:
        if self._link is not None:
            await self._link.close()
        if self._redis is not None:
            await self._redis.aclose()


def open_ledger(redis_url: str | None) -> MoLedger:
    return RedisMoLedger.from_url(redis_url) if redis_url else MemoryMoLedger()


def _dump(reply: SmsText | None) -> bytes:
    if reply is None:
        return ANSWERED
    return LOST + orjson.dumps({"t": reply.text, "e": reply.ends})


def _load(value: bytes) -> SmsText | None:
    try:
        data = orjson.loads(value[1:])
        text = str(data["t"])
        return SmsText(text, segment(text), bool(data["e"]))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


async def answer_once(
    ledger: MoLedger,
    key: str,
    ttl: int,
    produce: Callable[[], Awaitable[SmsText | None]],
    gone: Callable[[], bool] = lambda: False,
    *,
    wait: float = RACE_WAIT,
) -> tuple[SmsText | None, str]:
    """The reply to one delivery of an MO and what it was: `first`, `retry` (a lost
    reply handed to this delivery) or `duplicate` (answered elsewhere: nothing).

    `gone()` tells, once the reply is ready, whether the gateway stopped listening for
    it. The first delivery's work runs shielded: a gateway hanging up does not stop it
    half-way, and its reply is recorded for the retry.
    """
    if await ledger.claim(key, ttl):

        async def first() -> SmsText | None:
            reply = await produce()
            try:
                await ledger.record(key, _dump(reply) if gone() else ANSWERED, ttl)
            except (ConnectionError, OSError, TimeoutError, RedisError, RedisReplyError) as exc:
                # The claim stays pending until its TTL: a redelivery answers nothing.
                log.warning("sms: MO ledger unavailable (%s) recording an answer", type(exc))
            return reply

        return await asyncio.shield(asyncio.ensure_future(first())), "first"
    deadline = time.monotonic() + wait
    while True:
        value = await ledger.take(key)
        if value is not None and value.startswith(LOST):
            return _load(value), "retry"
        if value is None or not value.startswith(PENDING) or time.monotonic() >= deadline:
            return None, "duplicate"
        await asyncio.sleep(POLL)


MO_LEDGER: web.AppKey[MoLedger] = web.AppKey("SMS_MO_LEDGER")


async def ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's ledger (Redis when `redis_url` is set), closed with the app."""
    ledger = open_ledger(app[SETTINGS].redis_url)
    app[MO_LEDGER] = ledger
    yield
    await ledger.close()


async def reply_once(
    app: web.Application,
    sms: IncomingSms,
    layout: SmsLayout,
    gone: Callable[[], bool] = lambda: False,
) -> SmsText | None:
    """`answer_or_apology`, once per MO id (see the module docstring); an MO without an
    id is answered each time. The ledger unreachable: answered (the thread's recent ids
    still catch a later redelivery)."""
    if sms.message_id is None:
        return await answer_or_apology(app, sms, layout)
    settings = app[SETTINGS]
    key = mo_key(settings.env, app[PSEUDONYM](sms.sender), sms.receiver, sms.message_id, sms.text)
    ledger = app[MO_LEDGER]
    try:
        reply, outcome = await answer_once(
            ledger,
            key,
            settings.sms.mo_dedupe_ttl,
            lambda: answer_or_apology(app, sms, layout),
            gone,
        )
    except (ConnectionError, OSError, TimeoutError, RedisError, RedisReplyError) as exc:
        log.warning("sms: MO ledger unavailable (%s); answering without it", type(exc).__name__)
        return await answer_or_apology(app, sms, layout)
    if outcome != "first":
        log.info("sms: redelivered MO (%s) from subscriber %s", outcome, app[PSEUDONYM](sms.sender))
    return reply
