"""The API's short-lived state in Redis: SMS codes, revocations, rate-limit windows.

Shared by every worker and host, so a limit or a revocation holds wherever the next
request lands. Keys carry pseudonyms and random ids, never a number:

    hotline:{env}:api:otp:{<pseudonym>}       hash {h: HMAC of the code, tries}   EX otp_ttl
    hotline:{env}:api:otp-sent:{<pseudonym>}  resend throttle                      EX otp_resend
    hotline:{env}:api:otp-lock:{<pseudonym>}  locked after too many wrong codes    EX otp_lock
    hotline:{env}:api:rev:{jti}               a revoked token, until it expires
    hotline:{env}:api:rev-client:{client id}  a revoked client, for a token's lifetime
    hotline:{env}:api:rl:{c|s}:{id}:{window}  fixed-window request counts
    hotline:{env}:api:idem:{<pseudonym>}:{key digest}  an order's body fingerprint  EX 1 day

A request's checks (two revocations, two windows) are one round trip: one script call
(`_GATE`) over hotline's pipelined link, or one redis-py pipeline where the URL needs
redis-py (Sentinel, Cluster: the gate's keys are in different slots, which a script may
not touch at once).
The `{…}` around a pseudonym is a Redis Cluster hash tag: one subscriber's code and lock
share a slot, so the script that spends a try may touch both.
The rates are parsed by `hotline.web.ratelimit.parse_rate` like every other limit.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from hotline.store.redislink import RedisLink, RedisReplyError
from hotline.store.redisurl import AnyRedis
from hotline.web.ratelimit import parse_rate

__all__ = ["ApiState", "CodeCheck", "Window"]

# KEYS[1] code, KEYS[2] lock; ARGV[1] most tries, ARGV[2] lock seconds.
# One try is spent before the code is compared, so concurrent guesses all count.
_SPEND_TRY = """
local lock = redis.call('TTL', KEYS[2])
if lock > 0 then return {-1, lock} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if tries > tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
  return {-1, tonumber(ARGV[2])}
end
return {tries, redis.call('HGET', KEYS[1], 'h')}
"""


# KEYS[1] revoked client, KEYS[2] client window, KEYS[3] revoked token, KEYS[4] subscriber
# window; ARGV[1], ARGV[2] the windows' TTLs; ARGV[3], ARGV[4] '1' when KEYS[3], KEYS[4] are
# in use. Returns {client revoked, token revoked, client count, subscriber count}; a
# window's TTL is set by the hit that creates it (the script runs whole, so always).
_GATE = """
local client = redis.call('INCR', KEYS[2])
if client == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
local token = 0
if ARGV[3] == '1' then token = redis.call('EXISTS', KEYS[3]) end
local subscriber = 0
if ARGV[4] == '1' then
  subscriber = redis.call('INCR', KEYS[4])
  if subscriber == 1 then redis.call('EXPIRE', KEYS[4], ARGV[2]) end
end
return {redis.call('EXISTS', KEYS[1]), token, client, subscriber}
"""
_GATE_SHA = hashlib.sha1(_GATE.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Window:
    """A rate as a fixed window: `amount` hits per `period` seconds."""

    amount: int
    period: int

    @classmethod
    def parse(cls, rate: str) -> Window:
        item = parse_rate(rate)
        return cls(item.amount, int(item.get_expiry()))


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """How a code check ended: `ok`, `wrong`, `none` (no live code) or `locked`."""

    result: str
    retry_after: int = 0


class GateAnswer(NamedTuple):
    """What the gate found (a tuple: one is made per request)."""

    client_revoked: bool
    token_revoked: bool
    client_over: int  # seconds to wait, 0 when within the rate
    subscriber_over: int


class ApiState:
    """Every Redis operation the API needs, under one key prefix."""

    def __init__(
        self, redis: AnyRedis, env: str, code_secret: bytes, link: RedisLink | None = None
    ) -> None:
        self._redis = redis
        self._link = link  # the hot path's pipelined connection, where the URL allows one
        self._prefix = f"hotline:{env}:api:"
        self._code_secret = code_secret
        self._spend = redis.register_script(_SPEND_TRY)

    # ------------------------------------------------------------- idempotency

    async def first_use(self, pseudonym: str, key: str, fingerprint: str, ttl: int) -> str | None:
        """Remember `fingerprint` as what `key` means for this subscriber; None the first
        time, else the fingerprint the key was first used with (compare before acting)."""
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        name = f"{self._key('idem', pseudonym)}:{digest}"
        if await self._redis.set(name, fingerprint, ex=ttl, nx=True):
            return None
        found = await self._redis.get(name)
        if found is None:  # expired in between: this use is the first again
            await self._redis.set(name, fingerprint, ex=ttl, nx=True)
            return None
        return found.decode() if isinstance(found, bytes) else str(found)

    # ------------------------------------------------------------- codes

    def _key(self, kind: str, pseudonym: str) -> str:
        return f"{self._prefix}{kind}:{{{pseudonym}}}"

    def _code_hash(self, pseudonym: str, code: str) -> str:
        return hmac.new(
            self._code_secret, f"{pseudonym}:{code}".encode(), hashlib.sha256
        ).hexdigest()

    async def locked_for(self, pseudonym: str) -> int:
        ttl = int(await self._redis.ttl(self._key("otp-lock", pseudonym)))
        return max(ttl, 0)

    async def may_send(self, pseudonym: str, resend: int) -> int:
        """Claim the right to send a code now: 0, or the seconds until the next one."""
        key = self._key("otp-sent", pseudonym)
        if await self._redis.set(key, "1", ex=resend, nx=True):
            return 0
        return max(int(await self._redis.ttl(key)), 1)

    async def new_code(self, pseudonym: str, ttl: int) -> str:
        """A fresh 6-digit code for this subscriber (replacing any earlier one)."""
        code = f"{secrets.randbelow(10**6):06d}"
        key = self._key("otp", pseudonym)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"h": self._code_hash(pseudonym, code), "tries": 0})
            pipe.expire(key, ttl)
            await pipe.execute()
        return code

    async def check_code(
        self, pseudonym: str, code: str, *, max_tries: int, lock: int
    ) -> CodeCheck:
        key = self._key("otp", pseudonym)
        lock_key = self._key("otp-lock", pseudonym)
        tries, stored = await self._spend(keys=[key, lock_key], args=[max_tries, lock])
        if int(tries) < 0:
            return CodeCheck("locked", int(stored))
        if int(tries) == 0:
            return CodeCheck("none")
        stored_hash = stored.decode() if isinstance(stored, bytes) else str(stored)
        if hmac.compare_digest(stored_hash, self._code_hash(pseudonym, code)):
            # Only one request may use a code, however many arrive at once.
            if await self._redis.delete(key) == 1:
                await self._redis.delete(self._key("otp-sent", pseudonym))
                return CodeCheck("ok")
            return CodeCheck("none")
        if int(tries) >= max_tries:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.set(lock_key, "1", ex=lock)
                await pipe.execute()
            return CodeCheck("locked", lock)
        return CodeCheck("wrong")

    # ------------------------------------------------------- revocations

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        ttl = math.ceil(expires_at - time.time())
        if ttl > 0:
            await self._redis.set(self._prefix + "rev:" + jti, "1", ex=ttl)

    async def revoke_client(self, client: str, ttl: int) -> None:
        await self._redis.set(self._prefix + "rev-client:" + client, "1", ex=ttl)

    # -------------------------------------------------------------- gate

    async def gate(
        self,
        *,
        client: str,
        jti: str | None,
        client_rate: Window,
        subscriber: str | None,
        subscriber_rate: Window,
        now: float | None = None,
    ) -> GateAnswer:
        """One round trip: is the client or token revoked, and is either over its rate."""
        moment = now if now is not None else time.time()
        p = self._prefix
        keys = (
            p + "rev-client:" + client,
            _window_key(p + "rl:c:" + client, client_rate, moment),
            p + "rev:" + jti if jti else "",
            _window_key(p + "rl:s:" + subscriber, subscriber_rate, moment) if subscriber else "",
        )
        if self._link is not None:
            found = await self._gate_script(keys, client_rate, subscriber_rate)
        else:
            found = await self._gate_pipeline(keys, client_rate, subscriber_rate)
        client_over = _over(int(found[2]), client_rate, moment)
        subscriber_over = _over(int(found[3]), subscriber_rate, moment) if subscriber else 0
        return GateAnswer(
            client_revoked=bool(int(found[0])),
            token_revoked=bool(int(found[1])),
            client_over=client_over,
            subscriber_over=subscriber_over,
        )

    async def _gate_script(
        self, keys: tuple[str, str, str, str], client_rate: Window, subscriber_rate: Window
    ) -> list[Any]:
        assert self._link is not None
        args = (
            4, *keys, client_rate.period + 1, subscriber_rate.period + 1,
            "1" if keys[2] else "0", "1" if keys[3] else "0",
        )  # fmt: skip
        try:
            found: list[Any] = await self._link.execute("EVALSHA", _GATE_SHA, *args)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            # Redis restarted (or flushed its scripts): EVAL loads it again for EVALSHA.
            found = await self._link.execute("EVAL", _GATE, *args)
        return found

    async def _gate_pipeline(
        self, keys: tuple[str, str, str, str], client_rate: Window, subscriber_rate: Window
    ) -> list[Any]:
        """The script's answer from redis-py commands (Sentinel and Cluster URLs)."""
        revoked_client, c_key, revoked_token, s_key = keys
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(revoked_client)
            pipe.incr(c_key)
            pipe.expire(c_key, client_rate.period + 1)
            if revoked_token:
                pipe.exists(revoked_token)
            if s_key:
                pipe.incr(s_key)
                pipe.expire(s_key, subscriber_rate.period + 1)
            found = await pipe.execute()
        token = found[3] if revoked_token else 0
        subscriber = found[-2] if s_key else 0
        return [found[0], token, found[1], subscriber]


def _window_key(base: str, window: Window, now: float) -> str:
    return f"{base}:{int(now // window.period)}"


def _over(count: int, window: Window, now: float) -> int:
    if count <= window.amount:
        return 0
    return max(1, math.ceil(window.period - now % window.period))
