"""The SMS channel through smsbox's get-url/post-url, on memory and real Redis.

Balances from the real SQLite ledger (demo subscribers), sessions and threads in the
in-process store or a private redis-server. Nothing is mocked.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.web.app import create_app
from tests.sms.conftest import PHONE, kannel_query, sms_settings

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
SIG = "【hotline】"
BALANCE_ZH = "您的话费余额为12.50元。" + SIG
MENU_ZH = "话费查询\n1.话费余额\n2.退出\n回复序号继续。" + SIG
HELP_ZH = "未识别的指令。发送以下指令查询：YE、LL、KTTX、QXTX、BL、PJ、CD" + SIG

_ids = itertools.count(1)


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None) -> Client:
    return await aiohttp_client(create_app(sms_settings(tmp_path, store_url)))


async def mo(client: Client, text: str, **kw: str) -> tuple[str, dict[str, str]]:
    kw.setdefault("message_id", f"m{next(_ids)}")
    response = await client.get("/sms/kannel?" + kannel_query(text, **kw))
    assert response.status == 200, await response.text()
    return await response.text(), dict(response.headers)


@pytest.mark.parametrize("keyword", ["YE", "ye", "ＹＥ", "cxye", "余额", "balance", "102", " Ye "])
async def test_a_keyword_gets_the_balance_in_one_sms(client: Client, keyword: str) -> None:
    body, headers = await mo(client, keyword)
    assert body == BALANCE_ZH
    assert headers["X-Kannel-Coding"] == "2"


async def test_data_keyword_routes_to_its_state(client: Client) -> None:
    body, _ = await mo(client, "LL")
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    last = calendar.monthrange(today.year, today.month)[1]
    assert body == f"剩余流量3.00GB，有效期至{today.year}年{today.month}月{last}日。" + SIG


async def test_a_menu_continues_by_reply_digit(client: Client) -> None:
    assert (await mo(client, "CD"))[0] == MENU_ZH
    assert (await mo(client, "１"))[0] == BALANCE_ZH  # full-width digit
    # The session ended with that SMS: a digit now gets the help.
    assert (await mo(client, "1"))[0] == HELP_ZH


async def test_an_invalid_reply_shows_the_menu_again_with_a_notice(client: Client) -> None:
    await mo(client, "菜单")
    body, _ = await mo(client, "7")
    assert body == "输入有误，请重新选择。" + MENU_ZH
    assert (await mo(client, "2"))[0] == "感谢使用，再见。" + SIG


async def test_a_keyword_mid_menu_starts_afresh(client: Client) -> None:
    await mo(client, "CD")
    assert (await mo(client, "YE"))[0] == BALANCE_ZH
    assert (await mo(client, "1"))[0] == HELP_ZH


async def test_words_after_the_keyword_are_inputs(client: Client) -> None:
    assert (await mo(client, "CD 1"))[0] == BALANCE_ZH


async def test_unknown_keyword_gets_help(client: Client) -> None:
    body, headers = await mo(client, "HELLO")
    assert body == HELP_ZH
    assert headers["X-Kannel-Coding"] == "2"


async def test_a_redelivered_message_gets_no_second_reply(client: Client) -> None:
    body, _ = await mo(client, "CD", message_id="dup-1")
    assert body == MENU_ZH
    again, _ = await mo(client, "CD", message_id="dup-1")
    assert again == ""
    assert (await mo(client, "1", message_id="dup-2"))[0] == BALANCE_ZH
    assert (await mo(client, "1", message_id="dup-2"))[0] == ""
    assert (await mo(client, "CD", message_id="dup-1"))[0] == ""


async def test_threads_are_per_subscriber(client: Client) -> None:
    await mo(client, "CD")
    assert (await mo(client, "1", sender="+8613800138001"))[0] == HELP_ZH
    assert (await mo(client, "1"))[0] == BALANCE_ZH


async def test_ucs2_bytes_without_mo_recode(client: Client) -> None:
    query = kannel_query(
        "余额".encode("utf-16-be"), coding="2", charset="UTF-16BE", message_id="u1"
    )
    response = await client.get("/sms/kannel?" + query)
    assert await response.text() == BALANCE_ZH


async def test_post_url_with_kannel_headers(client: Client) -> None:
    response = await client.post(
        "/sms/kannel",
        data=b"YE",
        headers={
            "Content-Type": 'text/plain; charset="UTF-8"',
            "X-Kannel-From": PHONE,
            "X-Kannel-To": "10086",
            "X-Kannel-Coding": "0",
        },
    )
    assert response.status == 200
    assert await response.text() == BALANCE_ZH


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("to=10086&text=YE", "missing query field(s): from"),
        ("from=%2B8613800138000&to=10086", "missing query field(s): text"),
        ("from=abc&to=10086&text=YE", "from must be a phone number"),
        ("from=%2B8613800138000&to=10%20086&text=YE", "to must be"),
        ("from=%2B8613800138000&to=10086&text=YE&coding=1", "binary messages"),
        ("from=%2B8613800138000&to=10086&text=YE&coding=5", "coding must be"),
        ("from=%2B8613800138000&to=10086&text=YE&charset=KLINGON", "unknown charset"),
        ("from=%2B8613800138000&to=10086&text=%FF%FE&charset=UTF-8", "text is not valid UTF-8"),
        ("from=%2B8613800138000&to=10086&text=%00", "control characters"),
        ("from=%2B8613800138000&to=10086&text=YE&text=LL", "given twice"),
        ("from=%2B8613800138000&to=10086&text=YE&id=a%20b", "id must be"),
    ],
)
async def test_malformed_calls_get_400_with_a_reason(
    client: Client, query: str, reason: str
) -> None:
    response = await client.get("/sms/kannel?" + query)
    assert response.status == 400
    assert reason in await response.text()


async def test_a_too_long_message_gets_a_polite_sms_not_a_400(client: Client) -> None:
    response = await client.get("/sms/kannel?" + kannel_query("YE " + "A" * 700))
    assert response.status == 200
    assert await response.text() == (
        "短信过长，无法处理。请只发送指令：YE、LL、KTTX、QXTX、BL、PJ、CD"
        + SIG
    )
    assert response.headers["X-Kannel-Coding"] == "2"
    # Nothing else changed: the next keyword is answered as usual.
    assert (await mo(client, "YE"))[0] == BALANCE_ZH


async def test_redis_keys_carry_no_number(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    client = await aiohttp_client(create_app(sms_settings(tmp_path, redis_url)))
    await mo(client, "CD")
    keys = redis.Redis.from_url(redis_url).keys("*")
    assert keys
    digits = PHONE.lstrip("+")
    for key in keys:
        assert digits not in key.decode() and digits[-8:] not in key.decode()


async def test_a_source_outside_the_allow_list_is_refused(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, sms={"kannel_allowed_cidrs": ["10.9.9.0/24"]})
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/sms/kannel?" + kannel_query("YE"))
    assert response.status == 403


async def test_a_number_not_served_here_is_refused_with_a_reason(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, sms={"service_numbers": ["10086", "+106588"]})
    client = await aiohttp_client(create_app(settings))
    for to in ("10086", "106588", "+106588"):
        response = await client.get("/sms/kannel?" + kannel_query("YE", receiver=to))
        assert response.status == 200 and await response.text() == BALANCE_ZH, to
    response = await client.get("/sms/kannel?" + kannel_query("YE", receiver="10010"))
    assert response.status == 400
    assert "to is not one of this deployment's sms.service_numbers" in await response.text()
