"""Opting in and out from every channel through the real app (real Redis, ledger, outbox,
store), events posted over HTTP, crossings noticed on a balance lookup, and the reminder
SMS as the SMS channel words it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.base.config import Settings
from hotline.flow.screen import PromptPart
from hotline.reminders.events import Allowance, BalanceEvent, event_body
from hotline.reminders.service import SMS_KEY
from hotline.reminders.wiring import EVENTS_PATH, REMINDERS
from hotline.web.app import create_app
from hotline.web.keys import ENGINE, MESSAGES, SETTINGS
from sms.render import SmsLayout
from tests.ivr.test_http import Call
from tests.reminders.conftest import PHONE_C, usage
from tests.sms.conftest import kannel_query
from tests.ussd.test_http import Phone

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "events-token-for-tests"
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
SIG = "【hotline】"


def settings(tmp_path: Path, redis_url: str, audio: Path | None = None) -> Settings:
    values: dict[str, Any] = {
        "flows_dir": ROOT / "flows",
        "prompts_dir": ROOT / "prompts",
        "redis_url": redis_url,
        "redis_timeout": 2.0,  # as tests/ussd/test_http.py: room for a busy test host
        "pseudonym_secret": "test-secret",
        "balance": {
            "ledger_path": tmp_path / "ledger.sqlite3",
            "fresh_ttl": 0,
            "subscriber_rate": "1000/minute",
        },
        "sms": {"outbox_path": tmp_path / "outbox.sqlite3"},
        "reminders": {
            "database_path": tmp_path / "reminders.sqlite3",
            "event_token": TOKEN,
            "quiet_start": "00:00",  # no quiet hours: the tests run at any time of day
            "quiet_end": "00:00",
        },
    }
    if audio is not None:
        values["ivr"] = {"audio_dir": audio, "warm_prompts": False}
    return Settings(**values)


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path, redis_url: str) -> Client:
    return await aiohttp_client(create_app(settings(tmp_path, redis_url)))


async def _consent(client: Client) -> list[tuple[str, str, int | None]]:
    records = await client.server.app[REMINDERS].store.consent(PHONE_C)
    return [(r.action, r.channel, r.threshold_minor) for r in records]


async def _sms_rows(client: Client) -> list[dict[str, Any]]:
    return [r for r in await client.server.app[MESSAGES].rows() if r["key"] == SMS_KEY]


_ids = iter(range(1, 10_000))


async def mo(client: Client, text: str) -> str:
    response = await client.get("/sms/kannel?" + kannel_query(text, message_id=f"rem-{next(_ids)}"))
    assert response.status == 200, await response.text()
    return await response.text()


async def test_ussd_menu_8_opts_in_shows_the_setting_and_opts_out(client: Client) -> None:
    phone = Phone(client, "u1")
    assert (await phone.dial()).endswith("\n6.退出\n7.套餐\n8.余额提醒")
    assert (
        await phone.press("8")
        == "CON 话费低于多少元时短信提醒您？\n1.5元\n2.10元\n3.20元\n4.50元\n5.取消提醒\n6.套餐提醒\n0.返回"
    )
    assert await phone.press("2") == (
        "END 已开通余额提醒：话费低于10元时将短信通知您。回复QXTX取消提醒。"
    )
    assert await _consent(client) == [("in", "ussd", 1000)]
    again = Phone(client, "u2")
    await again.dial()
    assert await again.press("8") == (
        "CON 当前提醒值为10元。\n话费低于多少元时短信提醒您？\n1.5元\n2.10元\n3.20元\n4.50元\n5.取消提醒\n6.套餐提醒\n0.返回"
    )
    assert await again.press("5") == "END 已取消全部提醒。"
    assert await _consent(client) == [("in", "ussd", 1000), ("out", "ussd", None)]


async def test_sms_keyword_with_the_amount_and_without(client: Client) -> None:
    assert await mo(client, "KTTX 10") == (
        "已开通余额提醒：话费低于10元时将短信通知您。回复QXTX取消提醒。" + SIG
    )
    assert await mo(client, "kttx 7") == "提醒金额可选5/10/20/50元，请重新设置。" + SIG
    assert await mo(client, "KTTX") == "请回复提醒金额（元）：5、10、20或50。" + SIG
    assert await mo(client, "20") == (
        "已开通余额提醒：话费低于20元时将短信通知您。回复QXTX取消提醒。" + SIG
    )
    assert await mo(client, "QXTX") == "已取消全部提醒。" + SIG
    assert await mo(client, "取消提醒") == "您尚未开通余额提醒。" + SIG
    assert await _consent(client) == [
        ("in", "sms", 1000),
        ("in", "sms", 2000),
        ("out", "sms", None),
    ]


async def test_voice_menu_8_opts_in(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, redis_url, tmp_path / "audio")))
    call = Call(client, "CA-rem")
    await call.start()
    assert "余额提醒，请按八。" in call.spoken
    await call.press("8")
    assert call.spoken[:3] == ["话费低于多少元时短信提醒您？", "5元，请按一。", "10元，请按二。"]
    await call.press("3")
    assert call.spoken[:3] == [
        "已开通余额提醒：话费低于",
        "二十",  # a value: its own clip, said as a number
        "元时将短信通知您。回复QXTX取消提醒。",
    ]
    assert await _consent(client) == [("in", "ivr", 2000)]


async def test_events_posted_over_http(client: Client) -> None:
    await mo(client, "KTTX 5")
    body = event_body(usage("4.80", at=time.time()))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    response = await client.post(EVENTS_PATH, data=body, headers=headers)
    assert response.status == 202
    assert (await response.json())["outcome"] == "fired"
    response = await client.post(EVENTS_PATH, data=body, headers=headers)  # posted again
    assert (await response.json())["outcome"] == "unchanged"
    [row] = await _sms_rows(client)
    assert row["subscriber"] == PHONE_C and row["language"] == "zh-CN"

    bad = await client.post(EVENTS_PATH, data=body.replace(b'"4.80"', b'"-x"'), headers=headers)
    assert bad.status == 400
    assert "remainingAmount.amount" in (await bad.json())["error"]
    assert (await client.post(EVENTS_PATH, data=body)).status == 401
    wrong = {**headers, "Authorization": "Bearer nope"}
    assert (await client.post(EVENTS_PATH, data=body, headers=wrong)).status == 401
    huge = orjson.dumps({"eventId": "x" * 20000})
    assert (await client.post(EVENTS_PATH, data=huge, headers=headers)).status == 413


async def test_the_reminder_sms_as_the_sms_channel_words_it(client: Client) -> None:
    await mo(client, "KTTX 5")
    await client.server.app[REMINDERS].handle(usage("4.80", at=time.time()))
    [row] = await client.server.app[MESSAGES].claim(10, lease=30)
    app = client.server.app
    layout = SmsLayout.from_settings(app[ENGINE].catalogs, app[SETTINGS].sms)
    text = layout.message(PromptPart(row.key, row.values), row.language).text
    assert text == "您的话费余额为4.80元，已低于您设置的5元提醒值。回复QXTX取消提醒。" + SIG
    english = layout.message(PromptPart(row.key, row.values), "en").text
    assert english.startswith(
        "Your balance is CNY 4.80, below the CNY 5 reminder you set. Reply QXTX to stop"
    )


async def test_a_balance_lookup_notices_the_crossing(client: Client) -> None:
    assert (await mo(client, "KTTX 20")).startswith("已开通")  # demo subscriber: 12.50元
    phone = Phone(client, "u3", code="*100*1#")
    assert await phone.dial() == "END 您的话费余额为12.50元。"
    deadline = time.monotonic() + 10
    while not await _sms_rows(client) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    [row] = await _sms_rows(client)
    assert row["subscriber"] == PHONE_C
    await phone.dial()  # a second lookup: the same crossing, nothing more
    await asyncio.sleep(0.5)
    assert len(await _sms_rows(client)) == 1


async def test_bundle_reminders_by_ussd_submenu_and_sms_keywords(client: Client) -> None:
    phone = Phone(client, "u4")
    await phone.dial()
    await phone.press("8")
    assert (
        await phone.press("6")
        == "CON 套餐将用完或到期时短信提醒您：\n1.流量剩10%\n2.通话剩10%\n3.到期前3天\n0.返回 00.主页"
    )
    assert await phone.press("1") == (
        "END 已开通流量提醒：套餐流量剩余低于10%时将短信通知您。回复QXTX取消提醒。"
    )
    assert await mo(client, "KTTX DQ 3") == (
        "已开通到期提醒：套餐到期前3天将短信通知您。回复QXTX取消提醒。" + SIG
    )
    assert await mo(client, "kttx ll 15") == "剩余百分比可选10/20，请重新设置。" + SIG
    assert await mo(client, "KTTX YY") == "请回复剩余百分比，如10或20。" + SIG
    assert await mo(client, "20") == (
        "已开通通话提醒：套餐通话剩余低于20%时将短信通知您。回复QXTX取消提醒。" + SIG
    )
    assert await mo(client, "KTTX DQ 5") == "提醒天数可选1/3/7，请重新设置。" + SIG
    assert await mo(client, "KTTX XX") == "提醒金额可选5/10/20/50元，请重新设置。" + SIG
    service = client.server.app[REMINDERS]
    assert await service.rules_of(PHONE_C) == {"data.low": 10, "bundle.expiry": 3, "voice.low": 20}
    records = await service.store.consent(PHONE_C)
    assert [(r.rule, r.channel, r.threshold_minor) for r in records] == [
        ("data.low", "ussd", 10),
        ("bundle.expiry", "sms", 3),
        ("voice.low", "sms", 20),
    ]
    assert await mo(client, "QXTX") == "已取消全部提醒。" + SIG  # every rule off
    assert await service.rules_of(PHONE_C) == {}


async def test_a_data_reminder_sms_as_the_sms_channel_words_it(client: Client) -> None:
    await mo(client, "KTTX LL 10")
    app = client.server.app
    event = BalanceEvent(
        "ocs-data-1",
        "BalanceUsageEvent",
        time.time(),
        PHONE_C,
        None,
        "",
        (Allowance("data", "pkg-data-1", 400 * 1024**2, 10 * 1024**3, None),),
    )
    assert await app[REMINDERS].handle(event) == "fired"
    [row] = await app[MESSAGES].claim(10, lease=30)
    layout = SmsLayout.from_settings(app[ENGINE].catalogs, app[SETTINGS].sms)
    text = layout.message(PromptPart(row.key, row.values), row.language).text
    assert text == "您的套餐流量仅剩3%，已低于您设置的10%提醒值。回复QXTX取消提醒。" + SIG
    english = layout.message(PromptPart(row.key, row.values), "en").text
    assert english.startswith("Only 3% of your data is left, below the 10% reminder you set.")
