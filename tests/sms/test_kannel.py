"""hotline behind a real Kannel: fakesmsc → bearerbox (`smsc = fake`) → smsbox get-url →
hotline → the reply as smsbox's MT → fakesmsc. Chinese must arrive intact as UCS-2."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.base.values import Money, Text
from hotline.web.app import create_app
from hotline.web.keys import MESSAGES
from tests.conftest import free_port
from tests.sms.conftest import sms_settings
from tests.sms.kannel import KannelPeer, joined
from tests.sms.smsc import SmscPeer

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
    assert replies[0].text.startswith("未识别的指令。发送以下指令查询：YE、LL、KTTX")


@pytest.fixture
async def sending_hotline(
    aiohttp_server: MakeServer, kannel: KannelPeer, tmp_path: Path, redis_url: str
) -> AsyncIterator[web.Application]:
    base = f"http://127.0.0.1:{kannel.hotline_port}"
    settings: Any = sms_settings(
        tmp_path,
        redis_url,
        sms={
            "sender": "kannel",
            "kannel_sendsms_url": kannel.sendsms_url,
            "kannel_username": KannelPeer.USER,
            "kannel_password": KannelPeer.PASSWORD,
            "public_base_url": base,
            "send_rate": 200,
            "outbox_path": tmp_path / "outbox.sqlite3",
        },
    )
    app = create_app(settings)
    await aiohttp_server(app, port=kannel.hotline_port)
    yield app


async def _settled(outbox: Any, states: dict[str, int], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while await outbox.counts() != states:
            await asyncio.sleep(0.1)


async def test_outgoing_messages_are_sent_once_with_delivery_reports(
    kannel: KannelPeer, sending_hotline: web.Application
) -> None:
    messages = sending_hotline[MESSAGES]
    phone = "8613800138000"
    long_zh = "您的话费余额为12.50元。" * 10  # 150 characters: three UCS-2 parts
    ids = [
        await messages.send(phone, "result.balance", {"balance": Money(1250, "CNY")}, "zh-CN"),
        await messages.send(
            phone, "result.balance", {"balance": Money(99, "CNY")}, "en", kind="receipt"
        ),
        await messages.send(phone, "sms.help", {"keywords": Text(long_zh)}, "zh-CN", kind="otp"),
    ]
    received = await kannel.collect(phone, expect=5)
    singles = [m.text for m in received if m.kind != "udh"]
    parts = [m for m in received if m.kind == "udh"]
    assert singles == ["您的话费余额为12.50元。" + SIG, "Your main balance is CNY 0.99." + SIG]
    assert len(parts) == 3
    assert joined(parts, "ucs2") == "未识别的指令。发送以下指令查询：" + long_zh + SIG
    await _settled(messages, {"delivered": 3})
    rows = await messages.rows(ids)
    assert all(row["attempts"] == 1 and row["smsc_ref"] for row in rows)
    # Nothing more arrives: each message went out once.
    assert await kannel.collect(phone, expect=1, timeout=2.5) == []


async def test_a_refused_sendsms_fails_the_row_without_retrying(
    aiohttp_server: MakeServer, kannel: KannelPeer, tmp_path: Path, redis_url: str
) -> None:
    settings: Any = sms_settings(
        tmp_path,
        redis_url,
        sms={
            "sender": "kannel",
            "kannel_sendsms_url": kannel.sendsms_url,
            "kannel_username": KannelPeer.USER,
            "kannel_password": "wrong-password",
            "outbox_path": tmp_path / "outbox.sqlite3",
        },
    )
    app = create_app(settings)
    await aiohttp_server(app, port=kannel.hotline_port)
    ident = await app[MESSAGES].send("8613800138000", "common.goodbye", {}, "en")
    await _settled(app[MESSAGES], {"failed": 1})
    (row,) = await app[MESSAGES].rows([ident])
    assert row["attempts"] == 1
    assert row["last_error"].startswith("HTTP 403")


# ---- messages Kannel sends in parts, to an SMSC over SMPP (per-part receipts) ----------


@pytest.fixture
async def smpp_kannel(tmp_path: Path) -> AsyncIterator[tuple[KannelPeer, SmscPeer]]:
    """Kannel bound over SMPP (its `smpp` SMSC) to the test SMSC, which answers every
    `submit_sm` and sends a receipt for each one asking for it — as an operator's SMSC
    does, and unlike the `fake` SMSC, whose one report stands for every part."""
    smsc = SmscPeer(free_port())
    await smsc.start()
    (tmp_path / "kannel").mkdir()
    peer = KannelPeer(tmp_path / "kannel", free_port(), smpp_port=smsc.port)
    peer.start()
    try:
        await smsc.wait_for(lambda e: e.get("bound") == "kannel", timeout=20)
        yield peer, smsc
    finally:
        peer.stop()
        await smsc.stop()


@pytest.fixture
async def split_sender(
    aiohttp_server: MakeServer,
    smpp_kannel: tuple[KannelPeer, SmscPeer],
    tmp_path: Path,
    redis_url: str,
) -> AsyncIterator[web.Application]:
    kannel, _ = smpp_kannel
    settings: Any = sms_settings(
        tmp_path,
        redis_url,
        sms={
            "sender": "kannel",
            "kannel_sendsms_url": kannel.sendsms_url,
            "kannel_username": KannelPeer.USER,
            "kannel_password": KannelPeer.PASSWORD,
            "kannel_smsc": "smpp",
            "public_base_url": f"http://127.0.0.1:{kannel.hotline_port}",
            "send_rate": 200,
            "outbox_path": tmp_path / "outbox.sqlite3",
        },
    )
    app = create_app(settings)
    await aiohttp_server(app, port=kannel.hotline_port)
    yield app


LONG = "您的话费余额为12.50元。" * 10  # with the help's words: three UCS-2 parts


async def _send_long(app: web.Application, smsc: SmscPeer) -> tuple[int, list[str]]:
    """Queue one three-part message; its outbox id and the SMSC ids of its parts."""
    before = len(smsc.submits())
    ident = await app[MESSAGES].send("8613800138000", "sms.help", {"keywords": Text(LONG)}, "zh-CN")
    await smsc.count(lambda e: "submit" in e, before + 3)
    parts = sorted(smsc.submits()[before:], key=lambda p: p.udh[-1])
    assert [p.udh[-2:] for p in parts] == [bytes((3, n)) for n in (1, 2, 3)]
    return ident, [p.message_id or "" for p in parts]


async def _parts(app: web.Application, ident: int) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from hotline.store.outbox import parts_table as pt

    outbox = app[MESSAGES]
    rows = await outbox._run(
        lambda conn: conn.execute(
            select(pt.c.smsc_ref, pt.c.state).where(pt.c.row_id == ident).order_by(pt.c.number)
        ).all()
    )
    return [(str(r.smsc_ref), str(r.state)) for r in rows]


async def _state(app: web.Application, ident: int, want: str, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while (state := await app[MESSAGES].state_of(ident)) != want:
            await asyncio.sleep(0.1)
    assert state == want


async def test_a_message_kannel_sent_in_parts_is_delivered_with_its_reports(
    smpp_kannel: tuple[KannelPeer, SmscPeer], split_sender: web.Application
) -> None:
    _, smsc = smpp_kannel
    ident, ids = await _send_long(split_sender, smsc)
    await _state(split_sender, ident, "delivered")
    # Kannel asked the SMSC for a receipt of the first part only (its sms_split), and
    # reported once that the SMSC took all three (8): both slots filled.
    requested = [p.registered_delivery & 1 for p in sorted(smsc.submits(), key=lambda p: p.udh[-1])]
    assert requested == [1, 0, 0]
    assert await _parts(split_sender, ident) == [("*", "accepted"), (ids[0], "delivered")]
    (row,) = await split_sender[MESSAGES].rows([ident])
    assert row["attempts"] == 1


async def test_a_part_the_smsc_refuses_fails_the_message_kannel_split(
    smpp_kannel: tuple[KannelPeer, SmscPeer], split_sender: web.Application
) -> None:
    _, smsc = smpp_kannel
    await smsc.configure(refuse_part=2, status=0x0B)  # ESME_RINVDSTADR: permanent
    try:
        ident, _ = await _send_long(split_sender, smsc)
        await _state(split_sender, ident, "failed")
        # The first part reached the handset (its receipt said so) — the message failed
        # all the same, and stays failed.
        await asyncio.sleep(1.0)
        assert await split_sender[MESSAGES].state_of(ident) == "failed"
        states = [state for _, state in await _parts(split_sender, ident)]
        assert "failed" in states, states
    finally:
        await smsc.configure(refuse_part=2, status=0)


async def test_a_first_part_undelivered_fails_the_message_kannel_split(
    smpp_kannel: tuple[KannelPeer, SmscPeer], split_sender: web.Application
) -> None:
    _, smsc = smpp_kannel
    await smsc.configure(undeliverable=1)
    ident, ids = await _send_long(split_sender, smsc)
    await _state(split_sender, ident, "failed")
    want = [("*", "accepted"), (ids[0], "failed")]  # the SMSC took all three (8), later
    async with asyncio.timeout(10):
        while (parts := await _parts(split_sender, ident)) != want:
            await asyncio.sleep(0.1)
    assert parts == want
    assert await split_sender[MESSAGES].state_of(ident) == "failed"
