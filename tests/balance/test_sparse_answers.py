"""Valid but sparse upstream answers, and old data, through the gateways' HTTP (issue 13).

Every figure on a screen is its value, "no package", or "暂时无法查询…" — never an empty
`END ` or a bare voice `<Hangup/>`. Data older than the freshness bound, by the upstream's
own `as_of`, carries its time ("截至HH:MM").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.base.config import Settings
from hotline.web.app import create_app
from tests.balance.conftest import Sim
from tests.balance.test_ussd_upstream import app_settings
from tests.ivr.test_http import Call

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

DEMO = "+8613800138000"  # 12.50元; 3 GB, 200 min, 100 SMS (data first)
SPARSE = "+8613800138007"
BALANCE_UNKNOWN = "暂时无法查询您的话费余额，请稍后再试。"
DATA_UNKNOWN = "暂时无法查询您的流量余量，请稍后再试。"
ZONE = ZoneInfo("Asia/Shanghai")


async def ussd(client: Client, phone: str, session: str, text: str) -> str:
    response = await client.post(
        "/ussd/africastalking",
        data={"sessionId": session, "serviceCode": "*100#", "phoneNumber": phone, "text": text},
    )
    assert response.status == 200
    return await response.text()


@pytest.fixture(params=["v1", "tmf654"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def settings_for(sim: Sim, tmp_path: Path, dialect: str, *, voice: bool = False) -> Settings:
    settings = app_settings(sim, tmp_path, dialect=dialect)
    if not voice:
        return settings
    ivr = {"audio_dir": tmp_path / "audio", "warm_prompts": False}
    return Settings(**{**settings.model_dump(), "ivr": ivr})


async def test_no_main_balance_says_it_cannot_be_checked(
    sim: Sim, tmp_path: Path, aiohttp_client: MakeClient, dialect: str
) -> None:
    """v1 `main_balance: null`; TMF654 with no money bucket at all."""
    await sim.put(SPARSE, {"main_minor": None, "buckets": [{"usage_type": "sms", "remaining": 7}]})
    client = await aiohttp_client(create_app(settings_for(sim, tmp_path, dialect)))
    assert await ussd(client, SPARSE, "a", "1") == f"END {BALANCE_UNKNOWN}"
    summary = await ussd(client, SPARSE, "b", "4")
    assert summary == f"END 您的套餐摘要：\n{BALANCE_UNKNOWN}\n剩余短信7条。", summary
    # The figures the answer does have are still shown, and "none" stays "none".
    assert await ussd(client, SPARSE, "c", "3") == ("END 您当前没有通话套餐。\n剩余短信7条。")


async def test_a_money_bucket_of_unknown_status_is_not_a_balance(
    sim: Sim, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    """TMF654: the money bucket's status is one we do not know (alone, or beside packages)."""
    client = await aiohttp_client(create_app(settings_for(sim, tmp_path, "tmf654")))
    await sim.fault(fault="unknown_enum")
    assert await ussd(client, DEMO, "a", "1") == f"END {BALANCE_UNKNOWN}"
    await sim.put(SPARSE, {"main_minor": 500, "buckets": []})  # nothing but that bucket
    assert await ussd(client, SPARSE, "b", "1") == f"END {BALANCE_UNKNOWN}"


async def test_a_package_of_unknown_status_is_neither_shown_nor_denied(
    sim: Sim, tmp_path: Path, aiohttp_client: MakeClient, dialect: str
) -> None:
    client = await aiohttp_client(create_app(settings_for(sim, tmp_path, dialect)))
    await sim.fault(fault="unknown_enum", target="bucket")  # the data package
    assert await ussd(client, DEMO, "a", "2") == f"END {DATA_UNKNOWN}"
    first = await ussd(client, DEMO, "b", "4")
    assert first.startswith(f"CON 您的套餐摘要：\n您的话费余额为12.50元。\n{DATA_UNKNOWN}\n")
    rest = await ussd(client, DEMO, "b", "4*98")
    # The last page of a many-page result stays open to page back (issue 14).
    assert rest.startswith("CON 剩余通话") and "剩余短信100条" in rest, rest
    assert rest.endswith("\n(2/2) 0.上页"), rest


async def test_voice_speaks_a_sentence_for_a_sparse_answer(
    sim: Sim, tmp_path: Path, aiohttp_client: MakeClient, dialect: str
) -> None:
    await sim.put(SPARSE, {"main_minor": None, "buckets": [{"usage_type": "sms", "remaining": 7}]})
    settings = settings_for(sim, tmp_path, dialect, voice=True)
    call = Call(await aiohttp_client(create_app(settings)), "CA-sparse", SPARSE)
    await call.start()
    await call.press("1")
    # After the result, the offer to hear it again (issue 14).
    assert call.verbs == ["Gather", "Redirect"]
    assert call.spoken == [BALANCE_UNKNOWN, "重听请按星号键，返回主菜单请按零。"]


def _minute(moment: dt.datetime) -> str:
    return moment.astimezone(ZONE).strftime("%H:%M")


async def test_an_old_upstream_answer_carries_its_time(
    sim: Sim, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    """The upstream's own `as_of` is 10 minutes old: never shown as current."""
    client = await aiohttp_client(create_app(settings_for(sim, tmp_path, "v1")))
    assert await ussd(client, DEMO, "a", "1") == "END 您的话费余额为12.50元。"  # fresh
    await sim.fault(fault="stale_as_of", seconds=600)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=600)
    text = await ussd(client, "+8613800138001", "b", "1")
    after = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=600)
    found = re.fullmatch(r"END 您的话费余额为0\.05元。\n（截至(\d\d:\d\d)的数据）", text)
    assert found, text
    assert found.group(1) in {_minute(before), _minute(after)}


async def test_an_old_answer_is_labelled_on_voice_too(
    sim: Sim, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    settings = settings_for(sim, tmp_path, "v1", voice=True)
    call = Call(await aiohttp_client(create_app(settings)), "CA-old", DEMO)
    await sim.fault(fault="stale_as_of", seconds=600)
    await call.start()
    await call.press("1")
    assert call.spoken[:2] == ["您的话费余额为", "十二元五角。"]
    # The time is spoken as words (十一点十三分); then the offer to hear it again.
    assert len(call.spoken) == 6, call.spoken
    assert call.spoken[2] == "以上是截至" and call.spoken[4] == "的数据。", (
        call.spoken
    )  # voice: variant
    assert call.spoken[5] == "重听请按星号键，返回主菜单请按零。"
