"""hotline as an SMPP 3.4 ESME against an SMSC not written by this project (`smpp34`'s
server, in its own process: `tests/sms/smsc.py`): bind_transceiver, an MO `YE` answered
with the balance (UCS-2 intact), outbox messages with delivery receipts, concatenation,
the SMSC killed and started again (reconnect; queued messages out once), throttling."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import smpp34
from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.base.config import load_settings
from hotline.base.errors import ConfigError
from hotline.base.values import Money, Text
from hotline.links.nodelay import peer_addresses, tcp_nodelay
from hotline.links.reconnect import backoff
from hotline.web.app import create_app
from hotline.web.keys import MESSAGES
from sms.concat import Part, part_of
from sms.dialects import smpp
from tests.sms.conftest import sms_settings
from tests.sms.smpp_bind import fast_bind, running_peer
from tests.sms.smsc import SmscPeer

SIG = "【hotline】"
SERVICE = "10086"
PHONE = "8613800138000"
PASSWORD = "pw-8chr"
MakeServer = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def smsc() -> AsyncIterator[SmscPeer]:
    async with running_peer() as peer:
        yield peer


def _settings(tmp_path: Path, redis_url: str, port: int, **sms: Any) -> Any:
    return sms_settings(
        tmp_path,
        redis_url,
        sms={
            "transport": "smpp",
            "sender": "smpp",
            "smpp": {**fast_bind(port, "hotline", PASSWORD), "system_type": "VMA", "window": 4},
            "signatures": {"en": " [hotline]"},  # GSM-7 in English
            "send_rate": 200,
            "retry_base": 0.3,
            "outbox_path": tmp_path / "outbox.sqlite3",
            **sms,
        },
    )


async def _settled(outbox: Any, states: dict[str, int], timeout: float = 15) -> None:
    counts: dict[str, int] = {}
    try:
        async with asyncio.timeout(timeout):
            while (counts := await outbox.counts()) != states:
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"outbox {counts} after {timeout}s, expected {states}") from None


@pytest.fixture
async def hotline(
    aiohttp_server: MakeServer, smsc: SmscPeer, tmp_path: Path, redis_url: str
) -> AsyncIterator[web.Application]:
    app = create_app(_settings(tmp_path, redis_url, smsc.port))
    await aiohttp_server(app)
    await smsc.wait_for(lambda e: e.get("bound") == "hotline")
    yield app


async def test_ye_over_smpp_balance_receipts_and_a_restarted_smsc(
    smsc: SmscPeer, hotline: web.Application, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages = hotline[MESSAGES]

    # An MO `YE`: acknowledged, answered with the balance in UCS-2 from the service number.
    smsc.send_mo(PHONE, SERVICE, "YE")
    await smsc.wait_for(lambda e: "mo_resp" in e)
    assert [e["mo_resp"] for e in smsc.events if "mo_resp" in e] == [0]
    await smsc.count(lambda e: "submit" in e, 1)
    (reply,) = smsc.submits()
    assert (reply.destination, reply.source, reply.data_coding, reply.esm_class) == (
        PHONE,
        SERVICE,
        8,
        0,
    )
    assert reply.text == "您的话费余额为12.50元。" + SIG
    assert reply.registered_delivery == 0  # a conversation's reply asks no receipt

    # Outbox messages: GSM-7 and UCS-2, one in three concatenated parts; receipts recorded.
    long_zh = "您的话费余额为12.50元。" * 10  # 150 characters: three UCS-2 parts
    ids = [
        await messages.send(PHONE, "result.balance", {"balance": Money(1250, "CNY")}, "zh-CN"),
        await messages.send(
            PHONE, "result.balance", {"balance": Money(99, "CNY")}, "en", kind="receipt"
        ),
        await messages.send(PHONE, "sms.help", {"keywords": Text(long_zh)}, "zh-CN", kind="otp"),
    ]
    await _settled(messages, {"delivered": 3})
    submits = smsc.submits()[1:]
    assert len(submits) == 5
    single_zh, single_en, *parts = submits
    assert (single_zh.data_coding, single_zh.text) == (8, "您的话费余额为12.50元。" + SIG)
    assert (single_en.data_coding, single_en.text) == (
        0,
        "Your main balance is CNY 0.99. [hotline]",
    )
    assert all(p.data_coding == 8 and p.esm_class == 0x40 for p in parts)
    udhs = [p.udh for p in parts]
    assert [u[:3] for u in udhs] == [b"\x05\x00\x03"] * 3
    assert len({u[3] for u in udhs}) == 1  # one reference for the three parts
    assert [(u[4], u[5]) for u in udhs] == [(3, 1), (3, 2), (3, 3)]
    assert "".join(p.text for p in parts) == "未识别的指令。发送以下指令查询：" + long_zh + SIG
    rows = await messages.rows(ids)
    assert [row["smsc_ref"] for row in rows] == [
        single_zh.message_id,
        single_en.message_id,
        parts[0].message_id,
    ]
    assert all(row["attempts"] == 1 for row in rows)
    assert all(e["receipt_resp"] == 0 for e in smsc.events if "receipt_resp" in e)
    assert [e for e in smsc.events if "error" in e] == []

    # A second long message to the same number takes the next reference.
    more = await messages.send(PHONE, "sms.help", {"keywords": Text(long_zh)}, "zh-CN")
    await _settled(messages, {"delivered": 4})
    next_parts = smsc.submits()[6:]
    assert len(next_parts) == 3
    assert next_parts[0].udh[3] == (udhs[0][3] + 1) % 256

    # The SMSC dies; messages queued meanwhile go out, once each, after hotline rebinds.
    before = len(smsc.submits())
    await smsc.stop()
    queued = [
        await messages.send("8613900139000", "common.goodbye", {}, "en"),
        await messages.send("8613900139001", "common.goodbye", {}, "zh-CN"),
    ]
    await asyncio.sleep(1.5)  # hotline tries to rebind against a closed port meanwhile
    await smsc.start()
    await smsc.count(lambda e: e.get("bound") == "hotline", 2)
    await _settled(messages, {"delivered": 6}, timeout=30)
    after = smsc.submits()[before:]
    assert sorted(s.destination for s in after) == ["8613900139000", "8613900139001"]
    rows = await messages.rows([more, *queued])
    assert all(row["smsc_ref"] for row in rows)
    await asyncio.sleep(1.0)
    assert len(smsc.submits()) == before + 2  # nothing twice

    # Privacy: no number, no text, no password in hotline's logs.
    logged = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("sms", "hotline"))
    )
    for secret in (PHONE, "8613900139000", "余额", "12.50", PASSWORD):
        assert secret not in logged
    assert "bound as transceiver" in logged


async def test_throttling_is_retried_and_a_refusal_fails_without_retry(
    smsc: SmscPeer, hotline: web.Application
) -> None:
    messages = hotline[MESSAGES]
    await smsc.refuse(smpp.ESME_RTHROTTLED, times=1)
    first = await messages.send(PHONE, "common.goodbye", {}, "en")
    await _settled(messages, {"delivered": 1})
    (row,) = await messages.rows([first])
    assert row["attempts"] == 2
    assert [s.status for s in smsc.submits()] == [0x58, None]

    await smsc.refuse(smpp.ESME_RMSGQFUL, times=1)
    second = await messages.send(PHONE, "common.goodbye", {}, "en")
    await _settled(messages, {"delivered": 2})
    (row,) = await messages.rows([second])
    assert row["attempts"] == 2

    await smsc.refuse(0x0B, times=1)  # ESME_RINVDSTADR: permanent
    third = await messages.send(PHONE, "common.goodbye", {}, "en")
    await _settled(messages, {"delivered": 2, "failed": 1})
    (row,) = await messages.rows([third])
    assert row["attempts"] == 1
    assert row["last_error"] == "submit_sm_resp 0x0000000B"


@pytest.mark.parametrize("attempt", [1024, 5000])
def test_backoff_stays_capped_however_long_the_peer_is_down(attempt: int) -> None:
    # 2**1024 is no float: the bind task once died here after ~1000 refused binds.
    assert 0.25 <= backoff(attempt, 0.1, 0.5) <= 0.5
    assert 0.05 <= backoff(0, 0.1, 0.5) <= 0.1


def test_receipts_read_from_text_or_tlvs() -> None:
    text = b"id:ABC123 sub:001 dlvrd:000 submit date:2612060000 done date:2612060001 stat:UNDELIV err:001 text:"
    assert smpp.parse_receipt(text, 0x04, []) == smpp.Receipt("ABC123", "failed")
    tlvs = [
        smpp34.Tlv(smpp.TLV_RECEIPTED_MESSAGE_ID, b"XYZ\x00"),
        smpp34.Tlv(smpp.TLV_MESSAGE_STATE, b"\x02"),
    ]
    assert smpp.parse_receipt(b"", 0x04, tlvs) == smpp.Receipt("XYZ", "delivered")
    assert smpp.parse_receipt(b"", 0x00, tlvs) == smpp.Receipt("XYZ", "delivered")
    assert smpp.parse_receipt(b"YE", 0x00, []) is None
    assert smpp.parse_receipt(b"id:1 stat:ENROUTE", 0x04, []) == smpp.Receipt("1", "buffered")


@pytest.mark.parametrize(
    ("status", "result"),
    [(0x00, "accepted"), (0x58, "retry"), (0x14, "retry"), (0x0B, "permanent"), (0x45, "retry")],
)
def test_submit_sm_resp_statuses(status: int, result: str) -> None:
    assert smpp.submit_outcome(status, "m1").result == result


def test_gsm7_octets_and_mo_texts() -> None:
    text = "Hi @£ {€} ü"
    octets = smpp.gsm7_octets(text)
    assert octets[:3] == b"Hi " and octets[3] == 0x00 and octets[4] == 0x01
    assert smpp.gsm7_text(octets) == text
    assert smpp.decode_text(octets, 0, 0) == text
    assert smpp.decode_text("余额".encode("utf-16-be"), 8, 0) == "余额"
    udh = smpp.concat_udh(7, 2, 1)
    assert smpp.decode_text(udh + "ye".encode("utf-16-be"), 8, 0x40) == "ye"
    with pytest.raises(ValueError):
        smpp.gsm7_octets("余")


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        (
            "sms: {transport: smpp}",
            "config sms (HOTLINE_SMS): Value error, transport smpp needs an smpp section "
            "(host, port, system_id, …)",
        ),
        (
            "sms: {transport: smpp, smpp: {system_id: h, password: s3cret, port: 0}}",
            "config sms.smpp.port (HOTLINE_SMS__SMPP__PORT): "
            "Input should be greater than or equal to 1, got 0",
        ),
        (
            "sms: {transport: smpp, smpp: {system_id: h, password: s3cret-too-long}}",
            "config sms.smpp.password (HOTLINE_SMS__SMPP__PASSWORD): Value error, "
            "SMPP 3.4 passwords are at most 8 characters",
        ),
        (
            "sms: {transport: kannel, sender: smpp}",
            "config sms (HOTLINE_SMS): Value error, sender smpp does not match transport kannel",
        ),
    ],
)
def test_a_bad_smpp_setting_is_one_line(tmp_path: Path, yaml: str, message: str) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text(yaml + "\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value) == message
    assert "s3cret" not in str(caught.value)


async def test_a_redelivered_mo_gets_one_answer(smsc: SmscPeer, hotline: web.Application) -> None:
    reference = ((smpp.TLV_USER_MESSAGE_REFERENCE, b"\x00\x2a"),)
    smsc.send_mo(PHONE, SERVICE, "YE", reference)
    await smsc.count(lambda e: "submit" in e, 1)
    smsc.send_mo(PHONE, SERVICE, "YE", reference)  # the SMSC delivers it again
    await smsc.count(lambda e: "mo_resp" in e, 2)
    smsc.send_mo(PHONE, SERVICE, "YE")  # a new message: answered
    await smsc.count(lambda e: "submit" in e, 2)
    await asyncio.sleep(1.0)
    assert [e["mo_resp"] for e in smsc.events if "mo_resp" in e] == [0, 0, 0]
    assert [s.text for s in smsc.submits()] == ["您的话费余额为12.50元。" + SIG] * 2


class NackingSmsc:
    """The one peer written here, because `smpp34.Server` never sends a `generic_nack`:
    raw SMPP over asyncio streams that answers binds, enquire_link and unbind, nacks the
    first `submit_sm` (ESME_RINVCMDID) and accepts the others."""

    def __init__(self) -> None:
        self.binds = 0
        self.submits = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def pdu(command: int, status: int, sequence: int, body: bytes = b"") -> bytes:
            return struct.pack(">IIII", 16 + len(body), command, status, sequence) + body

        try:
            while True:
                length, command, _status, sequence = struct.unpack(
                    ">IIII", await reader.readexactly(16)
                )
                await reader.readexactly(length - 16)
                if command == 0x09:  # bind_transceiver
                    self.binds += 1
                    writer.write(pdu(0x80000009, 0, sequence, b"NACKER\x00"))
                elif command == 0x15:  # enquire_link
                    writer.write(pdu(0x80000015, 0, sequence))
                elif command == 0x06:  # unbind
                    writer.write(pdu(0x80000006, 0, sequence))
                    await writer.drain()
                    break
                elif command == 0x04:  # submit_sm
                    self.submits += 1
                    if self.submits == 1:
                        writer.write(pdu(0x80000000, 0x03, sequence))  # generic_nack
                    else:
                        writer.write(pdu(0x80000004, 0, sequence, b"N%d\x00" % self.submits))
                else:
                    writer.write(pdu(0x80000000, 0x03, sequence))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_a_generic_nack_rebinds_and_the_message_goes_out_once(
    aiohttp_server: MakeServer, tmp_path: Path, redis_url: str
) -> None:
    smsc = NackingSmsc()
    port = await smsc.start()
    try:
        app = create_app(_settings(tmp_path, redis_url, port))
        await aiohttp_server(app)
        ident = await app[MESSAGES].send(PHONE, "common.goodbye", {}, "en")
        await _settled(app[MESSAGES], {"sent": 1})
        (row,) = await app[MESSAGES].rows([ident])
        assert (row["attempts"], row["smsc_ref"]) == (2, "N2")
        assert (smsc.binds, smsc.submits) == (2, 2)
    finally:
        await smsc.stop()


HELP_WORDS = "YE、LL、KTTX、QXTX、BL、PJ、CD"


async def _mo_answers(smsc: SmscPeer, mos: int, submits: int) -> list[str]:
    """Wait until `mos` MOs were acknowledged and `submits` replies went out (and a
    little longer, to see nothing more comes); the replies' texts."""
    await smsc.count(lambda e: "mo_resp" in e, mos)
    if submits:
        await smsc.count(lambda e: "submit" in e, submits)
    await asyncio.sleep(0.8)
    assert [e["mo_resp"] for e in smsc.events if "mo_resp" in e] == [0] * mos
    return [s.text for s in smsc.submits()]


async def test_a_concatenated_mo_is_joined_before_it_is_routed(
    smsc: SmscPeer, hotline: web.Application
) -> None:
    balance = "您的话费余额为12.50元。" + SIG
    # UDH, 8-bit reference, GSM: "Y" + "E", the second part first and delivered twice.
    smsc.send_raw_mo(PHONE, SERVICE, smpp.concat_udh(9, 2, 2) + b"E", esm_class=0x40)
    smsc.send_raw_mo(PHONE, SERVICE, smpp.concat_udh(9, 2, 2) + b"E", esm_class=0x40)
    smsc.send_raw_mo(PHONE, SERVICE, smpp.concat_udh(9, 2, 1) + b"Y", esm_class=0x40)
    assert await _mo_answers(smsc, 3, 1) == [balance]
    # UDH, 16-bit reference (IEI 0x08), UCS-2: "余" + "额".
    for number, char in ((1, "余"), (2, "额")):
        udh = bytes((6, 0x08, 4, 0x01, 0x02, 2, number))
        smsc.send_raw_mo(
            PHONE, SERVICE, udh + char.encode("utf-16-be"), data_coding=8, esm_class=0x40
        )
    assert await _mo_answers(smsc, 5, 2) == [balance] * 2
    # SAR TLVs, no UDH: "C" + "D" (the menu), a surrogate pair split across parts
    # would be joined the same way: the octets are joined, then decoded.
    for number, chars in ((1, "C"), (2, "D")):
        sar = (
            (0x020C, b"\x00\x07"),
            (0x020E, b"\x02"),
            (0x020F, bytes((number,))),
        )
        smsc.send_raw_mo(PHONE, SERVICE, chars.encode(), tlvs=sar)
    texts = await _mo_answers(smsc, 7, 3)
    assert texts[2] == "话费查询\n1.话费余额\n2.退出\n回复序号继续。" + SIG
    # A part whose others never come is not answered: nothing more went out.
    smsc.send_raw_mo(PHONE, SERVICE, smpp.concat_udh(10, 3, 1) + b"L", esm_class=0x40)
    assert len(await _mo_answers(smsc, 8, 3)) == 3


async def test_mos_hotline_cannot_read_get_a_polite_sms_and_binary_gets_none(
    smsc: SmscPeer, hotline: web.Application
) -> None:
    unreadable = "无法识别您的短信。请发送以下指令：" + HELP_WORDS + SIG
    too_long = "短信过长，无法处理。请只发送指令：" + HELP_WORDS + SIG
    # The help lists every keyword the flows declare: it may take more than one part.
    hp, tp = _ucs2_parts(unreadable), _ucs2_parts(too_long)
    smsc.send_raw_mo(PHONE, SERVICE, b"YE", data_coding=0x05)  # JIS: not read here
    assert _joined(await _mo_answers(smsc, 1, hp), hp) == [unreadable]
    smsc.send_raw_mo(PHONE, SERVICE, b"\x09\x00\x03YE", esm_class=0x40)  # UDHL past the end
    assert _joined(await _mo_answers(smsc, 2, 2 * hp), hp) == [unreadable] * 2
    smsc.send_raw_mo(PHONE, SERVICE, "余额".encode("utf-16-be")[:3], data_coding=8)  # odd
    assert _joined(await _mo_answers(smsc, 3, 3 * hp), hp) == [unreadable] * 3
    smsc.send_raw_mo(PHONE, SERVICE, "余额".encode("utf-16-be"), data_coding=8)  # whole: read
    assert (await _mo_answers(smsc, 4, 3 * hp + 1))[3 * hp] == "您的话费余额为12.50元。" + SIG
    # 8-bit data (a SIM toolkit's, say): acknowledged, not answered.
    smsc.send_raw_mo(PHONE, SERVICE, b"\x01\x02\x03", data_coding=0x04)
    smsc.send_raw_mo(PHONE, SERVICE, b"\x01\x02\x03", data_coding=0xF6)
    assert len(await _mo_answers(smsc, 6, 3 * hp + 1)) == 3 * hp + 1
    # Five parts of 153 characters: 765 > sms.max_text_chars (640): told so, once.
    for number in range(1, 6):
        udh = smpp.concat_udh(33, 5, number)
        smsc.send_raw_mo(PHONE, SERVICE, udh + b"A" * 153, esm_class=0x40)
    texts = await _mo_answers(smsc, 11, 3 * hp + 1 + tp)
    assert _joined(texts[3 * hp + 1 :], tp) == [too_long]


def _ucs2_parts(text: str) -> int:
    """Parts of a UCS-2 SMS: one of 70 units, or 67 each when concatenated."""
    return 1 if len(text) <= 70 else -(-len(text) // 67)


def _joined(texts: list[str], parts: int) -> list[str]:
    """Consecutive parts of each reply, joined."""
    return ["".join(texts[i : i + parts]) for i in range(0, len(texts), parts)]


@pytest.mark.parametrize(
    ("udh", "tlvs", "expected"),
    [
        (b"", {}, None),
        (bytes((5, 0, 3, 7, 2, 1)), {}, Part(7, 2, 1)),
        (bytes((6, 8, 4, 1, 2, 3, 3)), {}, Part(0x0102, 3, 3)),
        (bytes((5, 0, 3, 7, 1, 1)), {}, None),  # one part of one: a plain message
        (b"", {0x020C: b"\x00\x05", 0x020E: b"\x02", 0x020F: b"\x02"}, Part(5, 2, 2)),
        (bytes((3, 0x24, 1, 1)), {}, None),  # another IE (national language): not parts
        (bytes((5, 0, 3, 7, 2, 3)), {}, "part 3 of 2"),
        (bytes((5, 0, 3, 7, 2, 0)), {}, "part 0 of 2"),
        (bytes((5, 0, 5, 7, 2, 1)), {}, "broken user data header"),
        (b"", {0x020C: b"\x05", 0x020E: b"\x02", 0x020F: b"\x01"}, "broken sar_* TLVs"),
    ],
)
def test_concatenation_read_from_udh_or_sar_tlvs(
    udh: bytes, tlvs: dict[int, bytes], expected: Part | str | None
) -> None:
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=re.escape(expected)):
            part_of(udh, tlvs)
    else:
        assert part_of(udh, tlvs) == expected


async def test_a_send_window_submits_concurrently_each_message_once(
    aiohttp_server: MakeServer, smsc: SmscPeer, tmp_path: Path, redis_url: str
) -> None:
    app = create_app(_settings(tmp_path, redis_url, smsc.port, send_window=8, send_rate=1000))
    await aiohttp_server(app)
    await smsc.wait_for(lambda e: e.get("bound") == "hotline")
    messages = app[MESSAGES]
    for n in range(40):
        await messages.send(PHONE, "result.balance", {"balance": Money(n, "CNY")}, "en")
    await _settled(messages, {"delivered": 40})
    texts = [s.text for s in smsc.submits()]
    assert sorted(texts) == sorted(
        f"Your main balance is CNY {n // 100}.{n % 100:02d}. [hotline]" for n in range(40)
    )
    rows = await messages.rows()
    assert all(row["attempts"] == 1 and row["smsc_ref"] for row in rows)


async def test_an_mo_to_a_number_not_served_here_is_acknowledged_not_answered(
    aiohttp_server: MakeServer, smsc: SmscPeer, tmp_path: Path, redis_url: str
) -> None:
    app = create_app(_settings(tmp_path, redis_url, smsc.port, service_numbers=[SERVICE]))
    await aiohttp_server(app)
    await smsc.wait_for(lambda e: e.get("bound") == "hotline")
    smsc.send_mo(PHONE, "10010", "YE")  # the SMSC routed another operator's number here
    smsc.send_mo(PHONE, SERVICE, "YE")
    assert await _mo_answers(smsc, 2, 1) == ["您的话费余额为12.50元。" + SIG]
    assert smsc.submits()[0].source == SERVICE


def _sockets_to(port: int) -> list[int]:
    """TCP_NODELAY of each of this process's TCP sockets connected to `port`."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with sock:
            try:
                internet = sock.family in (socket.AF_INET, socket.AF_INET6)
                if internet and sock.type == socket.SOCK_STREAM and sock.getpeername()[1] == port:
                    found.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            except OSError:
                pass  # not connected
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc (Linux)")
async def test_the_smsc_session_sends_without_nagle(
    smsc: SmscPeer, hotline: web.Application
) -> None:
    """smpp34 leaves Nagle's algorithm on; a keyword answer's `submit_sm` then waited for
    the SMSC's delayed ACK of the `deliver_sm_resp` before it (~40 ms each). The link
    sets TCP_NODELAY on the socket once bound."""
    flags: list[int] = []
    async with asyncio.timeout(10):
        while not flags or not all(flags):
            await asyncio.sleep(0.05)
            flags = _sockets_to(smsc.port)
    assert flags and all(flags)


async def test_tcp_nodelay_sets_only_the_sockets_to_that_peer() -> None:
    async def ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    one = await asyncio.start_server(ignore, "127.0.0.1", 0)
    other = await asyncio.start_server(ignore, "127.0.0.1", 0)
    port, other_port = one.sockets[0].getsockname()[1], other.sockets[0].getsockname()[1]
    plain = [socket.create_connection(("127.0.0.1", p)) for p in (port, port, other_port)]
    try:
        assert [s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in plain] == [0, 0, 0]
        assert tcp_nodelay(port, await peer_addresses("localhost", port)) == 2
        assert tcp_nodelay(port, frozenset({"192.0.2.1"})) == 0  # another host, same port
        assert [bool(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) for s in plain] == [
            True,
            True,
            False,
        ]
    finally:
        for s in plain:
            s.close()
        one.close()
        other.close()
