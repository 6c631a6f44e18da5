"""The billing simulator's unauthenticated stats name no number; hostile bodies and
headers get 400/401 from it, never a 500."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from hotline.balance.http import HttpProvider
from hotline.balance.signing import SCHEME
from hotline.balance.sim.app import stats_key
from hotline.base.privacy import Pseudonymizer
from tests.balance.conftest import KEY_ID, SECRET, Sim


async def test_stats_count_calls_per_pseudonym_not_per_number(sim: Sim, make_settings: Any) -> None:
    provider = HttpProvider(make_settings(sim.url).balance, Pseudonymizer("k"))
    try:
        await provider.fetch("+8613800138000")
        await provider.fetch("13800138001")
        await provider.fetch("+8613800138001")
    finally:
        await provider.close()
    async with sim.session.get(sim.server.make_url("/_sim/stats")) as resp:
        text = await resp.text()
    assert not re.search(r"1380013800[0-9]", text), text
    calls = (await sim.stats())["calls"]
    assert calls == {stats_key(SECRET, "13800138000"): 1, stats_key(SECRET, "13800138001"): 2}
    assert await sim.calls("+8613800138001") == 2  # whoever holds the secret can still look
    assert stats_key("another-secret", "13800138001") not in calls


async def _raw(sim: Sim, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(sim.server.host, sim.server.port)
    writer.write(data)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return reply


async def test_corrupt_bodies_and_odd_headers_are_4xx(sim: Sim) -> None:
    stamp = str(int(time.time() * 1000)).encode()
    auth = f"{SCHEME} keyId={KEY_ID}, signature=eA==".encode()
    for body, extra in [
        (b"garbage", b"Content-Encoding: gzip\r\n"),
        (b'{"msisdn":"+8613800138000"}', b"X-BQ-Nonce: \xe9\xe9\r\n"),
    ]:
        reply = await _raw(
            sim,
            b"POST /balance-query/v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            b"Authorization: " + auth + b"\r\nX-BQ-Timestamp: " + stamp + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body,
        )
        status = int(reply.split(b" ", 2)[1])
        assert status in (400, 401), reply[:200]
    reply = await _raw(
        sim,
        b"PUT /_sim/subscribers/13800138000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
        b"Content-Length: 7\r\n\r\ngarbage",
    )
    assert int(reply.split(b" ", 2)[1]) == 400, reply[:200]
