"""End to end: the billing simulator publishes usage and top-up events to a real
JetStream, a worker applies them, the real outbox gets one reminder per crossing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from hotline.balance.signing import auth_headers
from hotline.balance.sim import create_sim_app
from hotline.balance.sim.events import EVENTS
from hotline.reminders.jetstream import JetStreamConfig, Worker
from hotline.reminders.service import SMS_KEY, Reminders
from hotline.reminders.store import DATA_RULE
from hotline.store.outbox import Outbox
from tests.reminders.conftest import PHONE, NatsServer

KEY_ID, SECRET = "sim-key", "sim-secret-0123456789"


@pytest.fixture
async def sim(nats_server: NatsServer) -> AsyncIterator[TestServer]:
    app = create_sim_app(key_id=KEY_ID, secret=SECRET, events_url=nats_server.url)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def _topup(session: aiohttp.ClientSession, sim: TestServer, card: str) -> int:
    body = orjson.dumps({"msisdn": PHONE, "card": card})
    headers = auth_headers(
        method="POST",
        path="/v1/topup",
        query="",
        key_id=KEY_ID,
        secret=SECRET,
        body=body,
        timestamp_ms=int(time.time() * 1000),
        nonce=uuid.uuid4().hex,
    )
    async with session.post(
        sim.make_url("/v1/topup"),
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return int((await resp.json())["balance"]["amount_minor"])


async def _use(session: aiohttp.ClientSession, sim: TestServer, minor: int) -> int:
    async with session.post(
        sim.make_url("/_sim/usage"), json={"msisdn": PHONE, "amount_minor": minor}
    ) as resp:
        assert resp.status == 200, await resp.text()
        return int((await resp.json())["balance"]["amount_minor"])


async def test_simulated_usage_and_topups_give_one_sms_per_crossing(
    sim: TestServer, nats_server: NatsServer, reminders: Reminders, outbox: Outbox
) -> None:
    await reminders.subscribe(PHONE, 5, channel="ussd", language="zh-CN")  # demo: 12.50元
    worker = Worker(JetStreamConfig(url=nats_server.url), reminders.handle, reminders.pseudonym)
    task = asyncio.create_task(worker.run())
    async with aiohttp.ClientSession() as session:
        assert await _use(session, sim, 300) == 950
        assert await _use(session, sim, 500) == 450  # below 5元: a crossing
        assert await _use(session, sim, 100) == 350  # still below: nothing
        assert await _topup(session, sim, "1234567812345678") == 5350  # re-armed
        assert await _use(session, sim, 4900) == 450  # a second crossing
        async with session.post(sim.make_url("/_sim/usage"), json={"msisdn": PHONE}) as bad:
            assert bad.status == 400
    deadline = time.monotonic() + 20
    while worker.handled < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    worker.stop()
    await asyncio.wait_for(task, 10)
    assert sim.app[EVENTS].published == 5
    rows = [r for r in await outbox.rows() if r["key"] == SMS_KEY]
    assert len(rows) == 2
    assert [c["balance_minor"] for c in await reminders.store.crossings()] == [450, 450]


async def _use_data(session: aiohttp.ClientSession, sim: TestServer, spent: int) -> dict[str, int]:
    async with session.post(
        sim.make_url("/_sim/usage"), json={"msisdn": PHONE, "data_bytes": spent}
    ) as resp:
        assert resp.status == 200, await resp.text()
        return dict((await resp.json())["bucket"])


async def test_simulated_data_usage_gives_one_data_reminder(
    sim: TestServer, nats_server: NatsServer, reminders: Reminders, outbox: Outbox
) -> None:
    await reminders.subscribe(PHONE, 10, channel="ussd", language="zh-CN", rule=DATA_RULE)
    worker = Worker(
        JetStreamConfig(url=nats_server.url),
        reminders.handle,
        reminders.pseudonym,
        handle_batch=reminders.handle_batch,
    )
    task = asyncio.create_task(worker.run())
    gb = 1024**3
    async with aiohttp.ClientSession() as session:
        assert await _use_data(session, sim, 2 * gb) == {  # demo: 3 GB this month
            "usage_type": "data",
            "remaining": gb,
            "total": 3 * gb,
        }
        assert (await _use_data(session, sim, gb - 100 * 1024**2))["remaining"] == 100 * 1024**2
        assert (await _use_data(session, sim, 50 * 1024**2))["remaining"] == 50 * 1024**2
        both = {"msisdn": PHONE, "data_bytes": 1, "amount_minor": 1}
        async with session.post(sim.make_url("/_sim/usage"), json=both) as bad:
            assert bad.status == 400
    deadline = time.monotonic() + 20
    while worker.handled < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    worker.stop()
    await asyncio.wait_for(task, 10)
    rows = [r for r in await outbox.rows() if r["key"] == "reminder.sms_data"]
    assert len(rows) == 1
    [crossing] = await reminders.store.crossings()
    assert (crossing["rule"], crossing["balance_minor"]) == (DATA_RULE, 3)  # 3 % left
