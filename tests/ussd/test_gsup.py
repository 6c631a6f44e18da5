"""hotline as an Osmocom External USSD Entity against a real osmo-hlr (Debian `osmo-hlr`,
`tests/ussd/osmo_hlr.py`): the HLR's generated config routes `*100#` to `euse hotline`,
a GSUP client plays the MSC, and every message between it and hotline goes through the
HLR (which parses both sides with libosmocore). The 04.80 components are read back with
`pycrate`'s TS 24.080 ASN.1 (an independent codec), the session ids and IMSIs checked."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.web.app import create_app
from tests.ussd.osmo_hlr import Msc, OsmoHlr
from tests.ussd.test_http import make_settings
from ussd import gsup_wire as wire
from ussd.gsup_link import USSD_GSUP, ctrl_get

MakeServer = Callable[..., Awaitable[TestServer]]

IMSI = "001010000000001"
MSISDN = "+8613800138000"  # demo subscriber: 12.50元
#: The main menu (eight options) is two pages within the bearer's UCS-2 budget (112 octets).
MAIN = "话费查询\n1.话费余额\n2.流量余量\n3.通话和短信\n4.套餐摘要\n(1/2) 98.更多"
BALANCE = "您的话费余额为12.50元。"
_SESSIONS = itertools.count(100)


@pytest.fixture
async def hlr(tmp_path: Path) -> AsyncIterator[OsmoHlr]:
    workdir = tmp_path / "hlr"
    workdir.mkdir()
    server = OsmoHlr(workdir)
    await server.start()
    await server.provision(IMSI, MSISDN.lstrip("+"))
    yield server
    await server.stop()


async def _hotline(
    aiohttp_server: MakeServer, hlr: OsmoHlr, tmp_path: Path, redis_url: str, **extra: Any
) -> web.Application:
    settings = make_settings(
        tmp_path,
        redis_url,
        ussd_gsup={"host": hlr.address, "reconnect_min": 0.1, "reconnect_max": 0.5, **extra},
    )
    app = create_app(settings)
    await aiohttp_server(app)
    assert await app[USSD_GSUP].wait_connected(10)
    return app


@pytest.fixture
async def msc(hlr: OsmoHlr) -> AsyncIterator[Msc]:
    client = Msc(hlr.address)
    await client.connect()
    yield client
    await client.close()


def _dial(code: str, imsi: str = IMSI) -> tuple[wire.GsupMessage, int]:
    from pycrate_asn1dir import SS

    dcs, octets = wire.ussd_encode(code)
    facility = SS.SS_Facility.Facility
    facility.set_val(
        (
            "invoke",
            {
                "invokeID": 1,
                "operationCode": ("local", wire.OP_PROCESS_USS_REQ),
                "parameters": (
                    "USSD-Arg",
                    {"ussd-DataCodingScheme": bytes((dcs,)), "ussd-String": octets},
                ),
            },
        )
    )
    session = next(_SESSIONS)
    message = wire.GsupMessage(
        wire.PROC_SS_REQUEST,
        imsi,
        session_id=session,
        session_state=wire.BEGIN,
        ss_info=bytes(facility.to_ber()),
        message_class=wire.CLASS_USSD,
    )
    return message, session


def _answer(session: int, invoke_id: int, text: str, imsi: str = IMSI) -> wire.GsupMessage:
    """The subscriber's answer to our unstructuredSS-Request, as the MSC sends it."""
    from pycrate_asn1dir import SS

    dcs, octets = wire.ussd_encode(text)
    facility = SS.SS_Facility.Facility
    facility.set_val(
        (
            "returnResult",
            {
                "invokeID": invoke_id,
                "sequence": {
                    "operationCode": ("local", wire.OP_USS_REQ),
                    "parameters": (
                        "USSD-Res",
                        {"ussd-DataCodingScheme": bytes((dcs,)), "ussd-String": octets},
                    ),
                },
            },
        )
    )
    return wire.GsupMessage(
        wire.PROC_SS_REQUEST,
        imsi,
        session_id=session,
        session_state=wire.CONTINUE,
        ss_info=bytes(facility.to_ber()),
        message_class=wire.CLASS_USSD,
    )


def _read(message: wire.GsupMessage) -> tuple[int | None, wire.Component, int]:
    """Session state, the component (decoded by pycrate) and the USSD DCS of an answer."""
    from pycrate_asn1dir import SS

    assert message.imsi == IMSI and message.message_class == wire.CLASS_USSD
    assert message.ss_info is not None
    component = wire.decode_component(message.ss_info)
    facility = SS.SS_Facility.Facility
    facility.from_ber(message.ss_info)
    _, value = facility.get_val()
    dcs = -1
    parameters = value.get("parameters") or value.get("sequence", {}).get("parameters")
    if parameters:
        dcs = parameters[1]["ussd-DataCodingScheme"][0]
        assert len(parameters[1]["ussd-String"]) <= 112  # libosmocore's reply ceiling
    return message.session_state, component, dcs


# ------------------------------------------------------------------ wire, golden


def test_golden_gsup_and_0480_octets() -> None:
    # "*100#" packed into septets: the TS 23.038 example every USSD stack agrees on.
    assert wire.ussd_encode("*100#") == (0x0F, bytes.fromhex("aa180c3602"))
    assert wire.ussd_encode("话费") == (0x48, "话费".encode("utf-16-be"))
    assert wire.return_result(1, "Hello").hex() == "a214020101300f02013b300a04010f0405c8329bfd06"
    assert wire.invoke_ussr(2, "A").hex() == "a10e02010202013c300604010f040141"
    assert wire.return_error(1).hex() == "a306020101020124"
    begin = wire.GsupMessage(
        wire.PROC_SS_REQUEST,
        IMSI,
        session_id=5,
        session_state=wire.BEGIN,
        ss_info=bytes.fromhex("a11202010102013b300a04010f0405aa180c3602"),
        message_class=3,
    )
    # As osmo-hlr forwarded it to an EUSE (captured from 1.5.0), IEs in its order.
    forwarded = bytes.fromhex(
        "20010800010100000000f13004000000053101013514a11202010102013b300a04010f0405aa180c36020a0103"
    )
    decoded = wire.GsupMessage.decode(forwarded)
    assert (decoded.imsi, decoded.session_id, decoded.session_state) == (IMSI, 5, wire.BEGIN)
    assert decoded.ss_info == begin.ss_info and decoded.message_class == 3
    again = wire.GsupMessage.decode(begin.encode())  # our order differs; the fields do not
    assert (again.imsi, again.session_id, again.session_state, again.ss_info) == (
        decoded.imsi,
        decoded.session_id,
        decoded.session_state,
        decoded.ss_info,
    )
    # ID_RESP to an ID_GET for the serial number and tag 0x08: osmo-hlr names the route
    # by the serial number (`EUSE-hotline`, NUL-terminated); other tags get an empty value.
    assert wire.id_resp(bytes.fromhex("01000108"), "EUSE-hotline") == bytes.fromhex(
        "05000e00" + b"EUSE-hotline\x00".hex() + "00020800"
    )


def test_gsup_decoding_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="without IMSI"):
        wire.GsupMessage.decode(bytes.fromhex("20300400000001"))
    with pytest.raises(ValueError, match="cut short"):
        wire.GsupMessage.decode(bytes.fromhex("200108000101"))
    with pytest.raises(ValueError, match=r"not a GSM 04\.80 component"):
        wire.decode_component(b"\x30\x00")


# ------------------------------------------------------------------ through osmo-hlr


async def test_dial_menu_balance_through_osmo_hlr(
    aiohttp_server: MakeServer, hlr: OsmoHlr, msc: Msc, tmp_path: Path, redis_url: str
) -> None:
    await _hotline(aiohttp_server, hlr, tmp_path, redis_url)
    # The CTRL interface maps the IMSI to the provisioned number.
    assert await ctrl_get(hlr.address, 4259, f"subscriber.by-imsi-{IMSI}.msisdn") == MSISDN[1:]
    begin, session = _dial("*100#")
    msc.send(begin)
    menu = await msc.receive()
    assert (menu.msg_type, menu.session_id) == (wire.PROC_SS_REQUEST, session)
    state, component, dcs = _read(menu)
    assert (state, component.kind, component.opcode, component.text, dcs) == (
        wire.CONTINUE,
        "invoke",
        wire.OP_USS_REQ,
        MAIN,
        0x48,  # Chinese: UCS-2
    )
    msc.send(_answer(session, component.invoke_id, "1"))
    result = await msc.receive()
    assert (result.msg_type, result.session_id) == (wire.PROC_SS_RESULT, session)
    state, component, _ = _read(result)
    assert (state, component.kind, component.invoke_id, component.opcode, component.text) == (
        wire.END,
        "returnResult",
        1,  # answers the subscriber's processUnstructuredSS-Request
        wire.OP_PROCESS_USS_REQ,
        BALANCE,
    )


async def test_direct_dial_english_and_pagination(
    aiohttp_server: MakeServer, hlr: OsmoHlr, msc: Msc, tmp_path: Path, redis_url: str
) -> None:
    await _hotline(aiohttp_server, hlr, tmp_path, redis_url, ucs2_limit=30)
    begin, _ = _dial("*100*1#")
    msc.send(begin)
    state, component, _ = _read(await msc.receive())
    assert (state, component.text) == (wire.END, BALANCE)

    # The main menu does not fit 30 UCS-2 units: pages with 98 / 0, as over HTTP.
    begin, session = _dial("*100#")
    msc.send(begin)
    state, first, _ = _read(await msc.receive())
    assert state == wire.CONTINUE and first.text is not None and "98" in first.text
    msc.send(_answer(session, first.invoke_id, "98"))
    _, second, _ = _read(await msc.receive())
    assert second.text is not None and "1.话费余额" not in second.text
    msc.send(_answer(session, second.invoke_id, "0"))
    _, back, _ = _read(await msc.receive())
    assert back.text == first.text
    # Language: English is the GSM default alphabet (DCS 0x0F).
    msc.send(_answer(session, back.invoke_id, "5"))
    _, language, _ = _read(await msc.receive())
    msc.send(_answer(session, language.invoke_id, "2"))
    _, english, dcs = _read(await msc.receive())
    assert dcs == 0x0F and english.text is not None and english.text.startswith("Balance service")
    msc.send(_answer(session, english.invoke_id, "1"))
    state, result, dcs = _read(await msc.receive())
    assert (state, dcs) == (wire.END, 0x0F)
    assert result.text == "Your main balance is CNY 12.50."


async def test_hang_up_unknown_sessions_and_garbage(
    aiohttp_server: MakeServer,
    hlr: OsmoHlr,
    msc: Msc,
    tmp_path: Path,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = await _hotline(aiohttp_server, hlr, tmp_path, redis_url)
    begin, session = _dial("*100#")
    msc.send(begin)
    _, menu, _ = _read(await msc.receive())
    # The MSC ends the dialogue (END) with a last USSD component: osmo-hlr passes it
    # on, the session ends, hotline answers nothing.
    last = _answer(session, menu.invoke_id, "6")
    last.session_state = wire.END
    msc.send(last)
    async with asyncio.timeout(5):
        while app[USSD_GSUP].dialogues:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert msc.inbox.empty()
    # An END without SS info is not forwarded by osmo-hlr 1.5: the EUSE never learns of
    # it, and the dialogue lasts until the session TTL (as the reference measured).
    begin, session = _dial("*100#")
    msc.send(begin)
    _, menu, _ = _read(await msc.receive())
    msc.send(
        wire.GsupMessage(
            wire.PROC_SS_REQUEST,
            IMSI,
            session_id=session,
            session_state=wire.END,
            message_class=wire.CLASS_USSD,
        )
    )
    await asyncio.sleep(0.5)
    assert msc.inbox.empty()
    assert len(app[USSD_GSUP].dialogues) == 1
    # An answer in a session hotline does not know: a result with a ReturnError.
    begin, session = _dial("*100#")
    msc.send(begin)
    await msc.receive()
    app[USSD_GSUP].dialogues.clear()  # as after a hotline restart
    msc.send(_answer(session, menu.invoke_id, "1"))
    refused = await msc.receive()
    state, component, _ = _read(refused)
    assert (state, component.kind) == (wire.END, "returnError")
    # (osmo-hlr 1.5 answers the MS with its own ReturnError — facilityNotSupported —
    # in place of the EUSE's; either way the subscriber's session ends with an error.)
    assert "an answer for a dialogue we do not know" in caplog.text
    assert IMSI not in caplog.text  # pseudonyms only


async def test_euse_reconnects_when_the_hlr_restarts(
    aiohttp_server: MakeServer, hlr: OsmoHlr, tmp_path: Path, redis_url: str
) -> None:
    app = await _hotline(aiohttp_server, hlr, tmp_path, redis_url)
    euse = app[USSD_GSUP]
    assert euse.connects == 1
    await hlr.stop()
    await hlr.start()
    async with asyncio.timeout(15):
        while euse.connects < 2:
            await asyncio.sleep(0.05)
    msc = Msc(hlr.address)
    await msc.connect()
    try:
        begin, _ = _dial("*100*1#")
        msc.send(begin)
        state, component, _ = _read(await msc.receive())
        assert (state, component.text) == (wire.END, BALANCE)
    finally:
        await msc.close()
