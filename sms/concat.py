"""Concatenated MOs: the parts of one long message joined before it is routed.

A phone sends a long SMS as parts, each naming the message (a reference), how many parts
it has and which one it is — in the user data header (IEI 0x00, 8-bit reference; IEI
0x08, 16-bit reference; 3GPP TS 23.040 §9.2.3.24.1 and .8) or, per SMSC profile, in the
`sar_msg_ref_num` (0x020C), `sar_total_segments` (0x020E) and `sar_segment_seqnum`
(0x020F) TLVs. `part_of` reads either. `Reassembly` keeps the parts' octets (not their
text: a UCS-2 character outside the BMP may straddle two parts) until the last arrives,
under a key named by a hash of the subscriber's pseudonym, the service number and the
reference:

    hotline:{env}:sms:parts:{digest}   hash: part number → octets   (TTL `PART_TTL`)

in Redis (one Lua script adds a part and, when it completes the set, takes them all:
parts may reach different workers) or in this process. A part delivered twice counts
once; parts of a message whose others never come expire.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from hotline.store.redisurl import AnyRedis, open_redis
from sms.keys import hashed_key

__all__ = [
    "PARTS",
    "MemoryReassembly",
    "Part",
    "Reassembly",
    "RedisReassembly",
    "open_reassembly",
    "part_of",
    "parts_key",
]

PART_TTL = 300  # seconds the first parts of a message wait for the rest
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F

_ADD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
  local all = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  return all
end
return false
"""


@dataclass(frozen=True, slots=True)
class Part:
    """Which part of which message: the reference, the count and the 1-based number."""

    reference: int
    total: int
    number: int

    @property
    def message_id(self) -> str:
        """An id for the joined message (the MO ledger's duplicate check)."""
        return f"cat:{self.reference:04x}:{self.total:02x}"


def _ies(udh: bytes) -> Mapping[int, bytes]:
    """The information elements of a UDH (its length octet included)."""
    found: dict[int, bytes] = {}
    index, end = 1, len(udh)
    while index + 2 <= end:
        iei, length = udh[index], udh[index + 1]
        value = udh[index + 2 : index + 2 + length]
        if len(value) != length:
            raise ValueError("broken user data header")
        found.setdefault(iei, value)
        index += 2 + length
    return found


def part_of(udh: bytes, tlvs: Mapping[int, bytes]) -> Part | None:
    """The concatenation a part carries (UDH first, else the SAR TLVs); None for a
    message of one part. `ValueError` for nonsense (part 0, part 3 of 2, a bad length)."""
    part: Part | None = None
    ies = _ies(udh) if udh else {}
    if 0x00 in ies:
        value = ies[0x00]
        if len(value) != 3:
            raise ValueError("broken concatenation header")
        part = Part(value[0], value[1], value[2])
    elif 0x08 in ies:
        value = ies[0x08]
        if len(value) != 4:
            raise ValueError("broken concatenation header")
        part = Part(int.from_bytes(value[:2], "big"), value[2], value[3])
    elif TLV_SAR_MSG_REF_NUM in tlvs:
        ref = tlvs[TLV_SAR_MSG_REF_NUM]
        total = tlvs.get(TLV_SAR_TOTAL_SEGMENTS, b"")
        number = tlvs.get(TLV_SAR_SEGMENT_SEQNUM, b"")
        if len(ref) != 2 or len(total) != 1 or len(number) != 1:
            raise ValueError("broken sar_* TLVs")
        part = Part(int.from_bytes(ref, "big"), total[0], number[0])
    if part is None or (part.total == 1 and part.number == 1):
        return None
    if not 1 <= part.number <= part.total:
        raise ValueError(f"part {part.number} of {part.total}")
    return part


def parts_key(env: str, pseudonym: str, receiver: str, part: Part) -> str:
    """Where a long message's parts wait: a hash of who wrote, to which number, and the
    message's reference and part count."""
    return hashed_key(env, "parts", pseudonym, receiver, part.reference, part.total)


class Reassembly(Protocol):
    async def add(self, key: str, part: Part, octets: bytes) -> bytes | None:
        """Keep one part; the whole message's octets, in order, once every part is in."""
        ...

    async def close(self) -> None: ...


def _joined(parts: Mapping[int, bytes], total: int) -> bytes | None:
    if len(parts) < total:
        return None
    return b"".join(parts[number] for number in range(1, total + 1))


class MemoryReassembly:
    """Parts in this process (single worker, no Redis)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._parts: dict[str, tuple[float, dict[int, bytes]]] = {}
        self._clock = clock

    async def add(self, key: str, part: Part, octets: bytes) -> bytes | None:
        now = self._clock()
        if len(self._parts) > 1000:  # now and then: drop the expired ones
            self._parts = {k: v for k, v in self._parts.items() if v[0] > now}
        expires, parts = self._parts.get(key, (0.0, {}))
        if expires <= now:
            parts = {}
        parts[part.number] = octets
        whole = _joined(parts, part.total)
        if whole is None:
            self._parts[key] = (now + PART_TTL, parts)
        else:
            self._parts.pop(key, None)
        return whole

    async def close(self) -> None:
        self._parts.clear()


class RedisReassembly:
    """Parts in a Redis hash; adding the last part takes them all, atomically."""

    def __init__(self, client: AnyRedis) -> None:
        self._redis = client

    async def add(self, key: str, part: Part, octets: bytes) -> bytes | None:
        found = await self._redis.eval(  # type: ignore[misc]
            _ADD, 1, key, part.number, octets, PART_TTL, part.total
        )
        if not found:
            return None
        pairs = list(found)
        parts = {int(pairs[i]): bytes(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        return _joined(parts, part.total)

    async def close(self) -> None:
        await self._redis.aclose()


def open_reassembly(redis_url: str | None) -> Reassembly:
    if redis_url:
        return RedisReassembly(open_redis(redis_url, socket_timeout=2.0))
    return MemoryReassembly()


PARTS: web.AppKey[Reassembly] = web.AppKey("SMS_PARTS")
