"""One answer per MO however often the gateway delivers it (`sms.dedupe`), on the
in-process store and a real redis-server: concurrent redeliveries, smsbox giving up on a
slow answer and calling again (the billing simulator made slow, a real client that hangs
up), and a later redelivery. Nothing mocked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotline.balance.sim import create_sim_app
from hotline.store.redisurl import open_redis
from hotline.web.app import create_app
from sms.dedupe import MemoryMoLedger, RedisMoLedger, answer_once, mo_key
from sms.render import SmsText
from sms.segments import segment
from tests.sms.conftest import PHONE, kannel_query, sms_settings

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
SIG = "【hotline】"
BALANCE_ZH = "您的话费余额为12.50元。" + SIG
KEY_ID = "sms-test-client"
SECRET = "sms-test-secret-0123456789"


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


async def test_concurrent_redeliveries_get_one_answer(
    aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None
) -> None:
    client = await aiohttp_client(create_app(sms_settings(tmp_path, store_url)))
    query = kannel_query("YE", message_id="race-1")
    responses = await asyncio.gather(*(client.get("/sms/kannel?" + query) for _ in range(4)))
    assert [r.status for r in responses] == [200] * 4
    bodies = sorted([await r.text() for r in responses])
    assert bodies == ["", "", "", BALANCE_ZH]
    # Later, the same id again: still nothing; a new id is a new message.
    assert await (await client.get("/sms/kannel?" + query)).text() == ""
    fresh = kannel_query("YE", message_id="race-2")
    assert await (await client.get("/sms/kannel?" + fresh)).text() == BALANCE_ZH


async def test_same_id_other_text_or_sender_is_not_a_duplicate(
    aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None
) -> None:
    client = await aiohttp_client(create_app(sms_settings(tmp_path, store_url)))
    one = kannel_query("YE", message_id="7")
    other_sender = kannel_query("YE", message_id="7", sender="+8613800138001")
    assert await (await client.get("/sms/kannel?" + one)).text() == BALANCE_ZH
    other = await (await client.get("/sms/kannel?" + other_sender)).text()
    assert other.startswith("您的话费余额为")


@pytest.fixture
async def slow_billing() -> AsyncIterator[str]:
    """The billing simulator answering every balance 1.2 s late."""
    server = TestServer(create_sim_app(key_id=KEY_ID, secret=SECRET), host="127.0.0.1")
    await server.start_server(access_log=None)
    async with aiohttp.ClientSession() as session:
        rule = {"fault": "latency", "ms": 1200}
        async with session.post(server.make_url("/_sim/faults"), json=rule) as resp:
            assert resp.status == 201, await resp.text()
    yield str(server.make_url("/"))
    await server.close()


async def test_a_reply_the_gateway_gave_up_on_goes_to_its_retry(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
    store_url: str | None,
    slow_billing: str,
) -> None:
    balance = {
        "provider": "http",
        "url": slow_billing,
        "key_id": KEY_ID,
        "secret": SECRET,
        "deadline": 3.0,
        "read_timeout": 2.0,
    }
    app = create_app(sms_settings(tmp_path, store_url, balance=balance))
    server = await aiohttp_server(app)
    url = str(server.make_url("/sms/kannel")) + "?" + kannel_query("YE", message_id="slow-1")
    async with aiohttp.ClientSession() as session:
        # smsbox's first call: it stops waiting after 0.3 s and hangs up.
        with pytest.raises(TimeoutError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=0.3)) as resp:
                await resp.text()
        # Its retry (http-request-retry) gets the reply the first call computed…
        async with session.get(url) as resp:
            assert resp.status == 200
            reply = await resp.text()
            assert reply.startswith("您的话费余额为12.50元。") and reply.endswith(SIG)
            assert resp.headers["X-Kannel-Coding"] == "2"
        # … once: a further redelivery answers nothing.
        async with session.get(url) as resp:
            assert await resp.text() == ""
        # The balance was asked once: the retry did not take a second turn.
        async with session.get(slow_billing.rstrip("/") + "/_sim/stats") as resp:
            assert (await resp.json())["total_calls"] == 1


async def test_mo_keys_are_pseudonymous(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    client = await aiohttp_client(create_app(sms_settings(tmp_path, redis_url)))
    await client.get("/sms/kannel?" + kannel_query("YE", message_id="priv-1"))
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*:sms:mo:*")]
    assert len(keys) == 1
    ttl = redis.Redis.from_url(redis_url).ttl(keys[0])
    assert 0 < ttl <= 900
    assert PHONE.lstrip("+")[-8:] not in keys[0] and "priv-1" not in keys[0]


@pytest.mark.parametrize("kind", ["memory", "redis-link", "redis-py"])
async def test_answer_once_hands_a_lost_reply_out_once(
    kind: str, request: pytest.FixtureRequest
) -> None:
    ledger: MemoryMoLedger | RedisMoLedger = MemoryMoLedger()
    if kind == "redis-link":  # hotline's pipelined link (plain redis:// URLs)
        ledger = RedisMoLedger.from_url(request.getfixturevalue("redis_url"))
    elif kind == "redis-py":  # what TLS, Sentinel and Cluster URLs use
        ledger = RedisMoLedger(open_redis(request.getfixturevalue("redis_url")))
    key = mo_key("test", "pseudo", "10086", "id-1", "YE")
    release = asyncio.Event()
    produced = 0

    async def produce() -> SmsText:
        nonlocal produced
        produced += 1
        await release.wait()
        return SmsText("回复", segment("回复"))

    first = asyncio.ensure_future(answer_once(ledger, key, 60, produce, lambda: True))
    await asyncio.sleep(0.05)
    retries = [asyncio.ensure_future(answer_once(ledger, key, 60, produce)) for _ in range(3)]
    await asyncio.sleep(0.1)
    release.set()
    results = [await first, *[await r for r in retries]]
    assert produced == 1
    assert results[0] == (SmsText("回复", segment("回复")), "first")
    outcomes = sorted(outcome for _, outcome in results[1:])
    assert outcomes == ["duplicate", "duplicate", "retry"]
    await ledger.close()
