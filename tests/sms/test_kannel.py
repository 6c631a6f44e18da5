"""hotline behind a real Kannel: fakesmsc → bearerbox (`smsc = fake`) → smsbox get-url →
hotline → the reply as smsbox's MT → fakesmsc. Chinese must arrive intact as UCS-2."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.web.app import create_app
from tests.conftest import free_port
from tests.sms.conftest import sms_settings
from tests.sms.kannel import KannelPeer

SIG = "【hotline】"
SERVICE = "10086"
MakeServer = Callable[..., Awaitable[TestServer]]


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KannelPeer]:
    peer = KannelPeer(tmp_path_factory.mktemp("kannel"), free_port())
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
async def hotline(
    aiohttp_server: MakeServer, kannel: KannelPeer, tmp_path: Path, redis_url: str
) -> AsyncIterator[web.Application]:
    settings: Any = sms_settings(tmp_path, redis_url)
    app = create_app(settings)
    await aiohttp_server(app, port=kannel.hotline_port)
    yield app


async def test_ye_through_kannel_gets_the_balance_in_chinese(
    kannel: KannelPeer, hotline: web.Application
) -> None:
    replies = await kannel.inject("8613800138000", SERVICE, "YE")
    assert [(m.sender, m.kind, m.text) for m in replies] == [
        (SERVICE, "ucs-2", "您的话费余额为12.50元。" + SIG)
    ]


async def test_a_chinese_keyword_through_kannel(
    kannel: KannelPeer, hotline: web.Application
) -> None:
    replies = await kannel.inject("8613800138000", SERVICE, "余额")
    assert [m.text for m in replies] == ["您的话费余额为12.50元。" + SIG]


async def test_a_menu_then_a_reply_digit_through_kannel(
    kannel: KannelPeer, hotline: web.Application
) -> None:
    menu = await kannel.inject("8613800138000", SERVICE, "CD")
    assert [m.text for m in menu] == ["话费查询\n1.话费余额\n2.退出\n回复序号继续。" + SIG]
    balance = await kannel.inject("8613800138000", SERVICE, "1")
    assert [m.text for m in balance] == ["您的话费余额为12.50元。" + SIG]


async def test_an_unknown_keyword_through_kannel_gets_help(
    kannel: KannelPeer, hotline: web.Application
) -> None:
    replies = await kannel.inject("8613800138000", SERVICE, "HELLO")
    assert len(replies) == 1
    assert replies[0].text.startswith("未识别的指令。发送以下指令查询：YE、CXYE、余额")
