"""USSD over SMPP against an SMPP peer not written by this project: `smpp34`'s SMSC side
(`tests/sms/smsc.py`, its own process) plays the operator's USSD gateway, sending
`deliver_sm` dialogue steps with `ussd_service_op` / `its_session_info` and recording
hotline's `submit_sm` answers. Both vendor profiles (`3gpp`, `sixdee`), golden PDUs,
the same menus, pagination and navigation as over HTTP, aborts, unknown op codes and
sessions, and a gateway restart."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import smpp34
from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.web.app import create_app
from tests.sms.smpp_bind import fast_bind, running_peer
from tests.sms.smsc import SmscPeer
from tests.ussd.test_http import make_settings
from ussd.smpp_link import USSD_SMPP, decode_text, encode_text
from ussd.smpp_profiles import SixDee, ThreeGpp

MakeServer = Callable[..., Awaitable[TestServer]]

PHONE = "8613800138000"  # demo subscriber: 12.50元
SHORT = "100"
SYSTEM_ID = "hotline-ussd"
MAIN = "话费查询\n1.话费余额\n2.流量余量\n3.通话和短信\n4.套餐摘要\n5.语言/Language\n6.退出\n7.套餐\n8.余额提醒"
BALANCE = "您的话费余额为12.50元。"
OP, INFO = 0x0501, 0x1383


@pytest.fixture
async def gateway() -> AsyncIterator[SmscPeer]:
    async with running_peer() as peer:
        yield peer


def _settings(tmp_path: Path, redis_url: str, port: int, **ussd_smpp: Any) -> Any:
    return make_settings(
        tmp_path,
        redis_url,
        ussd_smpp={"link": fast_bind(port, SYSTEM_ID, "ussd-pw"), **ussd_smpp},
    )


async def _hotline(
    aiohttp_server: MakeServer, gateway: SmscPeer, tmp_path: Path, redis_url: str, **extra: Any
) -> web.Application:
    app = create_app(_settings(tmp_path, redis_url, gateway.port, **extra))
    await aiohttp_server(app)
    await gateway.wait_for(lambda e: e.get("bound") == SYSTEM_ID)
    return app


class Dialogue:
    """The gateway's side of one subscriber's dialogue: each step a `deliver_sm`, each
    answer the `submit_sm` hotline sends back (op code, session TLV, text)."""

    def __init__(self, gateway: SmscPeer, phone: str = PHONE) -> None:
        self.gateway = gateway
        self.phone = phone

    async def step(
        self, text: str, op: int | None, info: bytes | None = None, *, answered: bool = True
    ) -> tuple[int, bytes | None, str] | None:
        body, coding = encode_text(text)
        tlvs: list[tuple[int, str]] = []
        if op is not None:
            tlvs.append((OP, bytes((op,)).hex()))
        if info is not None:
            tlvs.append((INFO, info.hex()))
        before = sum(1 for e in list(self.gateway.events) if "submit" in e)
        acks = sum(1 for e in list(self.gateway.events) if "mo_resp" in e)
        self.gateway.command(
            mo={
                "source": self.phone,
                "dest": SHORT,
                "hex": body.hex(),
                "data_coding": coding,
                "service_type": "USSD",
                "tlvs": tlvs,
            }
        )
        await self.gateway.count(lambda e: "mo_resp" in e, acks + 1)
        if not answered:
            return None
        await self.gateway.count(lambda e: "submit" in e, before + 1)
        submit = [e["submit"] for e in self.gateway.events if "submit" in e][before]
        assert submit["destination"] == self.phone
        assert submit["source"] == SHORT
        assert submit["service_type"] == "USSD"
        found = {tag: bytes.fromhex(value) for tag, value in submit["tlvs"]}
        (reply_op,) = found[OP]
        text_out = decode_text(bytes.fromhex(submit["hex"]), submit["data_coding"])
        return reply_op, found.get(INFO), text_out


async def _quiet(gateway: SmscPeer, submits: int, seconds: float = 1.0) -> None:
    """Nothing more was sent within `seconds`."""
    await asyncio.sleep(seconds)
    assert sum(1 for e in gateway.events if "submit" in e) == submits


# ------------------------------------------------------------------ golden PDUs


# A 3GPP-style PSSR indication as a USSD gateway sends it: service_type USSD, from
# 8613800138000 (TON 1, NPI 1) to 100, `*100#` in the default alphabet, ussd_service_op 1.
GOLDEN_PSSR_INDICATION = "".join(
    (
        "0000003f",  # command_length 63
        "00000005",  # deliver_sm
        "00000000",  # command_status
        "00000007",  # sequence_number
        "5553534400",  # service_type "USSD"
        "0101",  # source_addr_ton 1 (international), npi 1 (ISDN)
        "3836313338303031333830303000",  # source_addr "8613800138000"
        "0000",  # dest_addr_ton, npi
        "31303000",  # destination_addr "100"
        "000000",  # esm_class, protocol_id, priority_flag
        "0000",  # schedule_delivery_time, validity_period (empty)
        "00000000",  # registered_delivery, replace_if_present, data_coding 0, default id
        "05",  # sm_length
        "2a31303023",  # "*100#"
        "0501000101",  # ussd_service_op = 1 (PSSR indication)
    )
)


def test_golden_pssr_indication_decodes_to_a_dial() -> None:
    pdu = smpp34.decode(bytes.fromhex(GOLDEN_PSSR_INDICATION))
    assert isinstance(pdu, smpp34.DeliverSm)
    assert (pdu.service_type, pdu.source_addr, pdu.destination_addr) == ("USSD", PHONE, SHORT)
    assert decode_text(pdu.short_message, pdu.data_coding) == "*100#"
    (tlv,) = pdu.tlvs
    incoming = ThreeGpp().read(bytes(tlv.value)[0], None)
    assert (incoming.kind, incoming.op) == ("start", 1)
    assert ThreeGpp().answer(incoming, ends=False) == (2, None)  # USSR request
    assert ThreeGpp().answer(incoming, ends=True) == (17, None)  # PSSR response


def test_golden_sixdee_session_info() -> None:
    # Dialog 0x1234, not ended: 0x2468; our last screen sets the end bit: 0x2469.
    assert SixDee.session_info(0x1234, False) == bytes.fromhex("2468")
    assert SixDee.session_info(0x1234, True) == bytes.fromhex("2469")
    new = SixDee().read(0x01, bytes.fromhex("2468"))
    assert (new.kind, new.dialog) == ("start", str(0x1234))
    assert SixDee().answer(new, ends=False) == (0x02, bytes.fromhex("2468"))
    assert SixDee().answer(new, ends=True) == (0x17, bytes.fromhex("2469"))
    assert SixDee().read(0x12, bytes.fromhex("2468")).kind == "input"
    assert SixDee().read(0x81, bytes.fromhex("2468")).kind == "abort"
    assert SixDee().read(0x12, bytes.fromhex("2469")).kind == "abort"  # the end bit
    assert SixDee().read(0x12, None).reason == "its_session_info must be 2 octets (none)"
    assert SixDee().read(0x33, bytes.fromhex("2468")).reason.startswith("ussd_service_op 0x33")


def test_golden_reply_submit_sm() -> None:
    """Our last screen as a 3GPP PSSR response, byte for byte (the fields `UssdSmppLink`
    hands the library; the test below sees them arrive at the gateway)."""
    body, coding = encode_text("Balance: CNY 12.50")
    pdu = smpp34.SubmitSm(
        SHORT,
        PHONE,
        body,
        service_type="USSD",
        dest_addr_ton=1,
        dest_addr_npi=1,
        data_coding=coding,
        tlvs=[smpp34.Tlv(OP, bytes((17,)))],
        sequence_number=2,
    )
    assert pdu.encode().hex() == "".join(
        (
            "0000004c",  # command_length 76
            "00000004",  # submit_sm
            "00000000",
            "00000002",
            "5553534400",  # service_type "USSD"
            "0000",
            "31303000",  # source_addr "100"
            "0101",  # to an international ISDN number
            "3836313338303031333830303000",  # destination_addr "8613800138000"
            "000000000000000000",  # esm … data_coding 0 (GSM default) … default id
            "12",  # sm_length 18
            "Balance: CNY 12.50".encode("ascii").hex(),  # GSM 03.38 = ASCII here
            "0501000111",  # ussd_service_op 17 (PSSR response)
        )
    )


# ------------------------------------------------------------------ 3gpp


async def test_3gpp_dial_menu_balance(
    aiohttp_server: MakeServer, gateway: SmscPeer, tmp_path: Path, redis_url: str
) -> None:
    await _hotline(aiohttp_server, gateway, tmp_path, redis_url)
    phone = Dialogue(gateway)
    assert await phone.step("*100#", 1) == (2, None, MAIN)  # USSR request: more to come
    submit = next(e["submit"] for e in gateway.events if "submit" in e)
    assert submit["data_coding"] == 8  # Chinese: UCS-2
    assert await phone.step("1", 18) == (17, None, BALANCE)  # PSSR response: the end
    # Direct dial lands on the balance at once; its_session_info is echoed.
    again = Dialogue(gateway, "8613800138001")
    answer = await again.step("*100*1#", 1, bytes.fromhex("0042"))
    assert answer is not None
    assert answer[:2] == (17, bytes.fromhex("0042"))


async def test_3gpp_navigation_and_pagination_as_over_http(
    aiohttp_server: MakeServer, gateway: SmscPeer, tmp_path: Path, redis_url: str
) -> None:
    await _hotline(aiohttp_server, gateway, tmp_path, redis_url, ucs2_limit=30)
    phone = Dialogue(gateway)
    first = await phone.step("*100#", 1)
    assert first is not None
    op, _, page1 = first
    assert op == 2 and "98" in page1 and page1.startswith("话费查询\n1.话费余额")
    assert len(page1) <= 30
    second = await phone.step("98", 18)
    assert second is not None and second[0] == 2
    assert "0" in second[2] and "1.话费余额" not in second[2]
    back = await phone.step("0", 18)
    assert back is not None and back[2] == page1
    assert await phone.step("1", 18) == (17, None, BALANCE)


async def test_3gpp_abort_unknown_ops_and_dialogues(
    aiohttp_server: MakeServer,
    gateway: SmscPeer,
    tmp_path: Path,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    app = await _hotline(aiohttp_server, gateway, tmp_path, redis_url, abort_op=0x20)
    phone = Dialogue(gateway)
    await phone.step("*100#", 1)
    # The subscriber cancels: the session ends and nothing is sent.
    await phone.step("", 0x20, answered=False)
    await _quiet(gateway, 1)
    assert not app[USSD_SMPP].entries
    # An answer for that dialogue now is one we do not know: closed with the apology.
    late = await phone.step("1", 18)
    assert late is not None
    assert late[0] == 17 and BALANCE not in late[2]
    # A USSN request (3) is no dialogue step of this profile: the same error path.
    odd = await phone.step("x", 3)
    assert odd is not None and odd[0] == 17
    assert "ussd_service_op 3 is not a 3gpp dialogue step" in caplog.text
    assert PHONE not in caplog.text  # pseudonyms only
    # A deliver_sm without ussd_service_op is no USSD: logged, not answered.
    await phone.step("hello", None, answered=False)
    await _quiet(gateway, 3)


# ------------------------------------------------------------------ sixdee


async def test_sixdee_dialogue_abort_and_errors(
    aiohttp_server: MakeServer,
    gateway: SmscPeer,
    tmp_path: Path,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    await _hotline(aiohttp_server, gateway, tmp_path, redis_url, profile="sixdee")
    phone = Dialogue(gateway)
    dialog = struct.pack(">H", 0x0ABC << 1)
    closing = struct.pack(">H", (0x0ABC << 1) | 1)
    assert await phone.step("*100#", 0x01, dialog) == (0x02, dialog, MAIN)
    language = await phone.step("5", 0x12, dialog)
    assert language is not None and language[0] == 0x02 and language[2].startswith("请选择语言")
    assert await phone.step("0", 0x12, dialog) == (0x02, dialog, MAIN)
    assert await phone.step("1", 0x12, dialog) == (0x17, closing, BALANCE)

    # Another dialogue, aborted by the subscriber (0x81): no answer.
    other = struct.pack(">H", 0x0ABD << 1)
    await phone.step("*100#", 0x01, other)
    sent = sum(1 for e in gateway.events if "submit" in e)
    await phone.step("", 0x81, other, answered=False)
    await _quiet(gateway, sent)

    # No its_session_info: closed with the apology, nothing to address it with.
    missing = await phone.step("*100#", 0x01)
    assert missing is not None and missing[:2] == (0x17, None)
    assert "its_session_info must be 2 octets (none)" in caplog.text
    # An op code 6D does not define: closed, the end bit set.
    unknown = await phone.step("1", 0x33, dialog)
    assert unknown is not None and unknown[:2] == (0x17, closing)


async def _binds(link: Any, n: int, timeout: float = 10) -> None:
    """Until hotline's link has bound `n` times (exactly: a third bind would be a fault)."""
    async with asyncio.timeout(timeout):
        while link.binds < n:
            await asyncio.sleep(0.02)
    assert link.binds == n


async def test_the_bind_comes_back_after_the_gateway_restarts(
    aiohttp_server: MakeServer, gateway: SmscPeer, tmp_path: Path, redis_url: str
) -> None:
    app = await _hotline(aiohttp_server, gateway, tmp_path, redis_url)
    link = app[USSD_SMPP].link
    assert link is not None
    # The SMSC says `bound` as it registers the session; hotline counts the bind a little
    # later (after its bind_resp and TCP_NODELAY), so each count is awaited, not read.
    await _binds(link, 1)
    await gateway.stop()
    await gateway.start()
    # The second `bound`: the restarted SMSC has registered the new session (hotline's
    # bind_resp can arrive before that, and an MO sent then would reach no session).
    await gateway.count(lambda e: e.get("bound") == SYSTEM_ID, 2)
    await _binds(link, 2)
    assert await link.wait_bound(10)
    assert await Dialogue(gateway).step("*100*1#", 1) == (17, None, BALANCE)


# ------------------------------------------------------------------ one bind, two channels


async def test_ussd_shares_the_sms_bind(
    aiohttp_server: MakeServer, gateway: SmscPeer, tmp_path: Path, redis_url: str
) -> None:
    """`share_sms_bind`: one SMSC session; MOs stay the SMS channel's, dialogue steps
    (they carry ussd_service_op) come to the USSD channel."""
    from hotline.links.smpp import SMPP_LINK
    from tests.sms.conftest import sms_settings

    settings = sms_settings(
        tmp_path,
        redis_url,
        sms={
            "transport": "smpp",
            "sender": "smpp",
            "smpp": {
                "host": "127.0.0.1",
                "port": gateway.port,
                "system_id": "hotline",
                "password": "pw-8chr",
                "enquire_link": 1.0,
                "reconnect_min": 0.1,
                "reconnect_max": 0.5,
                "submit_timeout": 3.0,
            },
            "outbox_path": tmp_path / "outbox.sqlite3",
        },
        ussd_smpp={"share_sms_bind": True},
    )
    app = create_app(settings)
    await aiohttp_server(app)
    await gateway.wait_for(lambda e: e.get("bound") == "hotline")
    assert app[USSD_SMPP].link is app[SMPP_LINK]
    phone = Dialogue(gateway)
    assert await phone.step("*100#", 1) == (2, None, MAIN)
    # An SMS MO on the same bind is the SMS channel's: answered as an SMS, no USSD TLV.
    gateway.send_mo(PHONE, "10086", "YE")
    await gateway.count(lambda e: "submit" in e, 2)
    sms = [e["submit"] for e in gateway.events if "submit" in e][1]
    assert sms["service_type"] == "" and not [t for t in sms["tlvs"] if t[0] == OP]
    assert decode_text(bytes.fromhex(sms["hex"]), sms["data_coding"]).startswith(BALANCE)
    assert await phone.step("1", 18) == (17, None, BALANCE)
    assert sum(1 for e in gateway.events if "bound" in e) == 1  # one session for both


def test_the_bind_is_one_or_the_other(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"either ussd_smpp\.link or"):
        make_settings(tmp_path, None, ussd_smpp={})
    with pytest.raises(ValidationError, match=r"needs sms\.transport: smpp"):
        make_settings(tmp_path, None, ussd_smpp={"share_sms_bind": True})
