"""What a USSD subscriber sees when the balance API misbehaves (through the gateway's HTTP).

The app runs the `http` provider against the billing simulator over loopback.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.base.config import Settings
from hotline.web.app import create_app
from tests.balance.conftest import KEY_ID, SECRET, Sim

ROOT = Path(__file__).resolve().parents[2]
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
BUSY = "END 系统繁忙，请稍后再试。"


def app_settings(sim: Sim, tmp_path: Path, **balance: Any) -> Settings:
    values: dict[str, Any] = {
        "provider": "http",
        "url": sim.url,
        "key_id": KEY_ID,
        "secret": SECRET,
        "ledger_path": tmp_path / "unused.sqlite3",
        "subscriber_rate": "1000/minute",
        "deadline": 0.4,
    }
    values.update(balance)
    return Settings(
        flows_dir=ROOT / "flows",
        prompts_dir=ROOT / "prompts",
        pseudonym_secret="test-secret",
        balance=values,
    )


async def balance_text(client: Client, phone: str, session: str) -> tuple[str, float]:
    started = time.perf_counter()
    response = await client.post(
        "/ussd/africastalking",
        data={"sessionId": session, "serviceCode": "*100#", "phoneNumber": phone, "text": "1"},
    )
    assert response.status == 200
    return await response.text(), time.perf_counter() - started


async def test_sentences_for_each_account(
    sim: Sim, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(create_app(app_settings(sim, tmp_path)))
    assert (await balance_text(client, "+8613800138000", "a"))[0] == "END 您的话费余额为12.50元。"
    owed = (await balance_text(client, "+8613800138002", "b"))[0]
    assert owed.startswith("END 您已欠费3.20元")
    assert (await balance_text(client, "+8613800138003", "c"))[0] == (
        "END 您的号码已停机，请充值后再试。"
    )
    await sim.put("13800138007", {"status": "barred", "main_minor": 100})
    assert (await balance_text(client, "+8613800138007", "d"))[0] == (
        "END 您的号码已停机，请充值后再试。"
    )
    assert (await balance_text(client, "+8613900000000", "e"))[0] == (
        "END 未查到您的号码信息，请联系客服。"
    )


@pytest.mark.parametrize(
    "fault",
    [
        {"fault": "hang"},
        {"fault": "status", "status": 503},
        {"fault": "wrong_types", "variant": "string_amount"},
        {"fault": "html_error", "status": 200},
    ],
)
async def test_a_broken_upstream_gets_stale_with_its_time_or_busy(
    sim: Sim, tmp_path: Path, aiohttp_client: MakeClient, fault: dict[str, Any]
) -> None:
    client = await aiohttp_client(create_app(app_settings(sim, tmp_path, fresh_ttl=0.05)))
    assert (await balance_text(client, "+8613800138000", "a"))[0] == "END 您的话费余额为12.50元。"
    await asyncio.sleep(0.1)  # past fresh_ttl
    await sim.fault(**fault)
    stale, elapsed = await balance_text(client, "+8613800138000", "b")
    assert re.fullmatch(r"END 您的话费余额为12\.50元。\n（截至\d\d:\d\d的数据）", stale), stale
    assert elapsed < 1.0  # deadline 0.4 s; the gateway allows 10 s
    busy, elapsed = await balance_text(client, "+8613800138001", "c")  # nothing cached
    assert busy == BUSY and elapsed < 1.0
    await sim.clear_faults()  # recovery needs nothing from anyone
    assert (await balance_text(client, "+8613800138001", "d"))[0].startswith(
        "END 您的话费余额为0.05元"
    )
