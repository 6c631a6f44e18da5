"""A worker killed (SIGKILL, a real `hotline serve` process) after it submitted an order
and before it answered: the gateway's retry, served by another worker, is the same
order — found by its id, never placed or charged again — and one receipt is sent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.store.outbox import Outbox
from hotline.web.app import create_app
from tests.conftest import free_port
from tests.plans.conftest import (
    KEY_ID,
    PSEUDONYM_SECRET,
    ROOT,
    SECRET,
    Sim,
    plan_settings,
    receipts,
)

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
PATH = "/ussd/africastalking"
PHONE = "+8613800138000"


def _form(text: str) -> dict[str, str]:
    return {"sessionId": "crash1", "serviceCode": "*100#", "phoneNumber": PHONE, "text": text}


async def test_a_worker_killed_after_submitting_never_orders_twice(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, sim: Sim
) -> None:
    store_url = f"sqlite:///{tmp_path / 'plans.sqlite3'}"
    port = free_port()
    env = {
        **os.environ,
        "HOTLINE_REDIS_URL": redis_url,
        "HOTLINE_FLOWS_DIR": str(ROOT / "flows"),
        "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
        "HOTLINE_PSEUDONYM_SECRET": PSEUDONYM_SECRET,
        "HOTLINE_BALANCE__LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
        "HOTLINE_SMS__OUTBOX_PATH": str(tmp_path / "outbox.sqlite3"),
        "HOTLINE_PLANS__PROVIDER": "http",
        "HOTLINE_PLANS__URL": sim.url,
        "HOTLINE_PLANS__KEY_ID": KEY_ID,
        "HOTLINE_PLANS__SECRET": SECRET,
        "HOTLINE_PLANS__STORE_URL": store_url,
        "HOTLINE_PLANS__DEADLINE": "8",
        "HOTLINE_PLANS__ANSWER_WINDOW": "8",
        "HOTLINE_PLANS__READ_TIMEOUT": "20",
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "hotline", "serve", "--port", str(port)]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}{PATH}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 120  # start-up on a busy machine
            while True:
                try:
                    async with http.post(url, data=_form("")) as response:
                        assert (await response.text()).startswith("CON 话费查询")
                        break
                except aiohttp.ClientConnectionError:
                    assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                    assert time.monotonic() < deadline, "hotline serve did not start"
                    await asyncio.sleep(0.1)
            for text in ("7", "7*1", "7*1*9", "7*1*9*1"):
                async with http.post(url, data=_form(text)) as response:
                    body = await response.text()
            assert body.startswith("CON 您选择了10GB流量包"), body
            await sim.fault(fault="timeout_after_accept", times=1)
            confirm = asyncio.create_task(http.post(url, data=_form("7*1*9*1*1")))
            deadline = time.monotonic() + 10
            while not (await sim.orders())["orders"]:
                assert time.monotonic() < deadline, "the order never reached the simulator"
                await asyncio.sleep(0.02)
            worker.send_signal(signal.SIGKILL)  # submitted, not yet answered
            worker.wait(timeout=10)
            try:
                await confirm
                raise AssertionError("the killed worker answered")
            except aiohttp.ClientError:
                pass  # the gateway saw the worker die; it retries elsewhere
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        if worker.stderr is not None:
            worker.stderr.close()

    book = await sim.orders()
    assert len(book["orders"]) == 1 and book["orders"][0]["state"] == "completed"
    oid = book["orders"][0]["externalId"]
    settings = plan_settings(tmp_path, store_url=store_url, sim_url=sim.url, redis_url=redis_url)
    other = await aiohttp_client(create_app(settings))
    retry = await other.post(PATH, data=_form("7*1*9*1*1"))  # the gateway's retry
    body = await retry.text()
    assert body.startswith("END 办理成功：10GB流量包") and oid in body
    book = await sim.orders()
    assert len(book["orders"]) == 1
    assert book["orders"][0]["submissions"] == 1  # looked up by its id, not sent again
    assert book["charges"] == {oid: 1}
    assert await sim.main_minor("13800138000") == 250
    outbox = Outbox(path=tmp_path / "outbox.sqlite3")
    assert [r["dedupe"] for r in await receipts(outbox)] == [oid]
    await outbox.close()
