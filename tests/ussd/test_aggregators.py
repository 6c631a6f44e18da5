"""The JSON aggregator dialects (Hubtel, Arkesel, Nalo, Beem): golden requests and answers
in each provider's published shape (as `reference/ussd.md` §2 records them), then whole
sessions through the HTTP surface the gateways call, retries and malformed requests.

Balances come from the real SQLite ledger (demo subscriber 8613800138000: 12.50元);
sessions from the in-process store or a private redis-server. Nothing is mocked.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hotline.base.config import UssdSettings
from hotline.base.errors import BadGatewayRequest
from hotline.web.app import create_app
from tests.ussd.test_http import make_settings
from ussd.dialects import arkesel, beem, hubtel, nalo
from ussd.jsonform import decode_json
from ussd.page import UssdPage

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

DIGITS = "8613800138000"
MAIN = "话费查询\n1.话费余额\n2.流量余量\n3.通话和短信\n4.套餐摘要\n5.语言/Language\n6.退出\n7.套餐\n8.余额提醒"
BALANCE = "您的话费余额为12.50元。"
LANGUAGE = "请选择语言"
SETTINGS = UssdSettings(service_codes={"arkesel": "*928*44#", "nalo": "*920*1#"})
TOKEN = "aggregator-path-token-0123"


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None) -> Client:
    settings = make_settings(
        tmp_path, store_url, ussd={"service_codes": {"arkesel": "*100#", "nalo": "*100#"}}
    )
    return await aiohttp_client(create_app(settings))


async def _post(client: Client, dialect: str, body: Any) -> dict[str, Any]:
    response = await client.post(f"/ussd/{dialect}", json=body)
    text = await response.text()
    assert response.status == 200, text
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    answer: dict[str, Any] = json.loads(text)
    return answer


# ------------------------------------------------------------------ golden: Hubtel


def _hubtel(**changes: Any) -> dict[str, str]:
    request: dict[str, Any] = {
        "Mobile": "233244567890",
        "SessionId": "3c1dbc0c4e4b4a7d8d0e2c4a1f7b9e21",
        "ServiceCode": "714",
        "Type": "Initiation",
        "Message": "*714#",
        "Operator": "Tigo",
        "Sequence": 1,
        "ClientState": "",
    }
    request.update(changes)
    return decode_json(json.dumps(request).encode())


def test_hubtel_initiation_is_a_start_numbered_by_sequence() -> None:
    event = hubtel.parse(_hubtel(), SETTINGS)
    assert (event.dialect, event.kind, event.subscriber, event.entry) == (
        "hubtel",
        "start",
        "+233244567890",
        "*714#",
    )
    assert (event.inputs, event.request_id, event.follows) == ((), "seq:1", None)


def test_hubtel_sends_the_newest_answer_and_its_sequence() -> None:
    event = hubtel.parse(_hubtel(Type="Response", Message="2", Sequence=3), SETTINGS)
    assert (event.kind, event.text, event.request_id, event.follows) == (
        "input",
        "2",
        "seq:3",
        "seq:2",
    )


def test_hubtel_direct_dial_under_a_sub_code() -> None:
    # The reference's example: `*714*5*3*100*1#` under the code `714*5`.
    event = hubtel.parse(_hubtel(ServiceCode="714*5", Message="*714*5*3*100*1#"), SETTINGS)
    assert (event.entry, event.inputs) == ("*714*5#", ("3", "100", "1"))


@pytest.mark.parametrize("kind", ["Release", "Timeout", "release"])
def test_hubtel_release_and_timeout_close_the_session(kind: str) -> None:
    event = hubtel.parse(_hubtel(Type=kind, Message="", Sequence=4), SETTINGS)
    assert (event.kind, event.text) == ("hangup", "")


def test_hubtel_answers_response_or_release() -> None:
    body, headers = hubtel.reply(UssdPage("话费查询\n1.话费余额", False, 1), "main", _hubtel())
    assert headers == {"Content-Type": "application/json; charset=utf-8"}
    assert body == (
        '{"Message": "话费查询\\n1.话费余额", "Type": "Response", "Label": "main", '
        '"ClientState": ""}'
    )
    body, _ = hubtel.reply(UssdPage(BALANCE, True, 1), "balance", _hubtel())
    assert json.loads(body)["Type"] == "Release"
    # Programmable Services write `Type` in lower case: answered in kind.
    body, _ = hubtel.reply(UssdPage(BALANCE, True, 1), "balance", _hubtel(Type="response"))
    assert json.loads(body)["Type"] == "release"


# ------------------------------------------------------------------ golden: Arkesel


def _arkesel(**changes: Any) -> dict[str, str]:
    request: dict[str, Any] = {
        "sessionID": "ark-1665479871431",
        "userID": "hotline-app",
        "newSession": True,
        "msisdn": "233241234567",
        "userData": "*928*44#",
        "network": "MTN",
    }
    request.update(changes)
    return decode_json(json.dumps(request).encode())


def test_arkesel_new_session_under_the_configured_code() -> None:
    event = arkesel.parse(_arkesel(), SETTINGS)
    assert (event.kind, event.entry, event.inputs, event.subscriber) == (
        "start",
        "*928*44#",
        (),
        "+233241234567",
    )
    assert event.request_id == "new"  # a repeated dial is recognised
    deep = arkesel.parse(_arkesel(userData="*928*44*1#"), SETTINGS)
    assert deep.inputs == ("1",)


def test_arkesel_sends_only_the_newest_answer_without_an_id() -> None:
    event = arkesel.parse(_arkesel(newSession=False, userData="1"), SETTINGS)
    assert (event.kind, event.text, event.entry, event.request_id) == (
        "input",
        "1",
        "*928*44#",
        None,
    )


def test_arkesel_answer_echoes_the_ids() -> None:
    body, _ = arkesel.reply(UssdPage("话费查询", False, 1), "main", _arkesel())
    assert json.loads(body) == {
        "sessionID": "ark-1665479871431",
        "userID": "hotline-app",
        "msisdn": "233241234567",
        "message": "话费查询",
        "continueSession": True,
    }
    body, _ = arkesel.reply(UssdPage(BALANCE, True, 1), "balance", _arkesel())
    assert json.loads(body)["continueSession"] is False


# ------------------------------------------------------------------ golden: Nalo


def _nalo(**changes: Any) -> dict[str, str]:
    # The documented sample: USERID, MSISDN, USERDATA, MSGTYPE, NETWORK, SESSIONID.
    request: dict[str, Any] = {
        "USERID": "NALOTest",
        "MSISDN": "233244000111",
        "USERDATA": "3",
        "MSGTYPE": False,
        "NETWORK": "MTN",
        "SESSIONID": "16590115252429751",
    }
    request.update(changes)
    return decode_json(json.dumps(request).encode())


def test_nalo_msgtype_true_is_the_dial() -> None:
    event = nalo.parse(_nalo(MSGTYPE=True, USERDATA="*920*1*2#"), SETTINGS)
    assert (event.kind, event.entry, event.inputs, event.session_id) == (
        "start",
        "*920*1#",
        ("2",),
        "16590115252429751",
    )


def test_nalo_newest_answer_and_the_number_as_session_without_sessionid() -> None:
    event = nalo.parse(_nalo(), SETTINGS)
    assert (event.kind, event.text, event.request_id) == ("input", "3", None)
    form = _nalo()
    del form["SESSIONID"]
    assert nalo.parse(form, SETTINGS).session_id == "233244000111"


def test_nalo_answer_msgtype_says_more_to_come() -> None:
    body, _ = nalo.reply(UssdPage("话费查询", False, 1), "main", _nalo())
    assert json.loads(body) == {
        "USERID": "NALOTest",
        "MSISDN": "233244000111",
        "MSG": "话费查询",
        "MSGTYPE": True,
    }
    body, _ = nalo.reply(UssdPage(BALANCE, True, 1), "balance", _nalo())
    assert json.loads(body)["MSGTYPE"] is False


# ------------------------------------------------------------------ golden: Beem


def _beem(**changes: Any) -> dict[str, str]:
    request: dict[str, Any] = {
        "session_id": "beem-7781",
        "msisdn": "255712000111",
        "serviceCode": "*150*00#",
        "operator": "vodacom",
        "command": "initiate",
        "payload": {"request_id": "r-1", "response": ""},
    }
    request.update(changes)
    return decode_json(json.dumps(request).encode())


def test_beem_request_ids_name_every_request() -> None:
    start = beem.parse(_beem(), SETTINGS)
    assert (start.kind, start.entry, start.request_id) == ("start", "*150*00#", "req:r-1")
    answer = beem.parse(
        _beem(command="continue", payload={"request_id": "r-2", "response": "1"}), SETTINGS
    )
    assert (answer.kind, answer.text, answer.request_id) == ("input", "1", "req:r-2")
    end = beem.parse(_beem(command="terminate", payload={"request_id": "r-3"}), SETTINGS)
    assert end.kind == "hangup"


def test_beem_answer_continue_or_terminate_with_the_session_id() -> None:
    body, _ = beem.reply(UssdPage("话费查询", False, 1), "main", _beem())
    assert json.loads(body) == {
        "msisdn": "255712000111",
        "operator": "vodacom",
        "session_id": "beem-7781",  # ussd-builder loses it here; we do not
        "command": "continue",
        "payload": {"request_id": "r-1", "request": "话费查询"},
    }
    body, _ = beem.reply(UssdPage(BALANCE, True, 1), "balance", _beem())
    assert json.loads(body)["command"] == "terminate"


# ------------------------------------------------------------------ malformed


@pytest.mark.parametrize(
    ("module", "form", "reason"),
    [
        (hubtel, _hubtel(Type="Bogus"), "Type must be Initiation"),
        (hubtel, _hubtel(Sequence=0), "Sequence must be a whole number"),
        (hubtel, _hubtel(Mobile="233-24"), "Mobile must be a phone number"),
        (hubtel, _hubtel(ServiceCode="abc"), "ServiceCode must be a USSD code"),
        (hubtel, _hubtel(Message="1\x00"), "Message may not hold control characters"),
        (arkesel, _arkesel(newSession="maybe"), "newSession must be true or false"),
        (arkesel, {"sessionID": "a", "msisdn": "233"}, "missing field(s): newSession, userData"),
        (nalo, _nalo(MSGTYPE=1), "MSGTYPE must be true or false"),
        (nalo, _nalo(SESSIONID="x y"), "SESSIONID must be 1-128 characters"),
        (beem, _beem(command="pause"), "command must be initiate, continue or terminate"),
        (beem, _beem(payload={"request_id": "r 1"}), "payload.request_id must be"),
        (
            beem,
            _beem(command="continue", payload={"request_id": "r-2"}),
            "missing field(s): payload.response",
        ),
    ],
)
def test_malformed_requests_name_what_is_wrong(
    module: Any, form: dict[str, str], reason: str
) -> None:
    with pytest.raises(BadGatewayRequest) as caught:
        module.parse(form, SETTINGS)
    assert caught.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1, 2]", "body must be a JSON object"),
        (b"{not json", "body is not JSON"),
        (b'{"a": 1.5}', "field 'a' must be a string, an integer or a boolean"),
        (b'{"a": [1]}', "field 'a' must be a string, an integer or a boolean"),
        (b'{"a": {"b": {"c": 1}}}', "field 'a' is nested too deeply"),
        (b'{"a": "\xff"}', "body is not UTF-8"),
    ],
)
def test_json_bodies_are_read_strictly(body: bytes, reason: str) -> None:
    with pytest.raises(BadGatewayRequest) as caught:
        decode_json(body)
    assert caught.value.reason.startswith(reason)


async def test_malformed_requests_get_400_with_the_reason(client: Client) -> None:
    response = await client.post(
        "/ussd/hubtel",
        data="Mobile=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (response.status, await response.text()) == (
        400,
        "Content-Type must be application/json",
    )
    response = await client.post(
        "/ussd/arkesel", data=b"[]", headers={"Content-Type": "application/json"}
    )
    assert (response.status, await response.text()) == (400, "body must be a JSON object")
    response = await client.post("/ussd/nalo", json={"MSISDN": DIGITS})
    assert (response.status, await response.text()) == (400, "missing field(s): USERDATA, MSGTYPE")
    response = await client.post("/ussd/beem", json=_beem(command="pause"))
    assert response.status == 400
    assert "command must be" in await response.text()


# ------------------------------------------------------------------ sessions over HTTP


async def test_hubtel_session_dial_menu_balance_end(client: Client) -> None:
    base = {"Mobile": DIGITS, "SessionId": "hub-1", "ServiceCode": "100", "Operator": "mtn"}
    first = await _post(
        client, "hubtel", {**base, "Type": "Initiation", "Message": "*100#", "Sequence": 1}
    )
    assert (first["Type"], first["Message"], first["Label"]) == ("Response", MAIN, "main")
    last = await _post(
        client, "hubtel", {**base, "Type": "Response", "Message": "1", "Sequence": 2}
    )
    assert (last["Type"], last["Message"]) == ("Release", BALANCE)


async def test_hubtel_retry_of_a_sequence_does_not_advance_twice(client: Client) -> None:
    base = {"Mobile": DIGITS, "SessionId": "hub-2", "ServiceCode": "100", "Operator": "mtn"}
    await _post(client, "hubtel", {**base, "Type": "Initiation", "Message": "*100#", "Sequence": 1})
    language = await _post(
        client, "hubtel", {**base, "Type": "Response", "Message": "5", "Sequence": 2}
    )
    assert language["Message"].startswith(LANGUAGE)
    # Hubtel did not get our answer and sends request 2 again: the same screen, not a
    # second "5" (which is no choice on the language menu).
    again = await _post(
        client, "hubtel", {**base, "Type": "Response", "Message": "5", "Sequence": 2}
    )
    assert again == language
    back = await _post(
        client, "hubtel", {**base, "Type": "Response", "Message": "0", "Sequence": 3}
    )
    assert back["Message"] == MAIN
    # A request that skips one (Sequence 5 after 3) is not guessed at: the session ends.
    skipped = await _post(
        client, "hubtel", {**base, "Type": "Response", "Message": "1", "Sequence": 5}
    )
    assert skipped["Type"] == "Release" and BALANCE not in skipped["Message"]


async def test_hubtel_direct_dial_goes_straight_to_the_balance(client: Client) -> None:
    body = {
        "Mobile": DIGITS,
        "SessionId": "hub-3",
        "ServiceCode": "100",
        "Type": "Initiation",
        "Message": "*100*1#",
        "Sequence": 1,
    }
    answer = await _post(client, "hubtel", body)
    assert (answer["Type"], answer["Message"]) == ("Release", BALANCE)


async def test_arkesel_session_dial_menu_balance_end(client: Client) -> None:
    base = {"sessionID": "ark-1", "userID": "app", "msisdn": DIGITS, "network": "MTN"}
    first = await _post(client, "arkesel", {**base, "newSession": True, "userData": "*100#"})
    assert first == {
        **{k: base[k] for k in ("sessionID", "userID", "msisdn")},
        "message": MAIN,
        "continueSession": True,
    }
    # A duplicate dial (the operator sent the start twice) shows the same menu.
    assert (
        await _post(client, "arkesel", {**base, "newSession": True, "userData": "*100#"}) == first
    )
    last = await _post(client, "arkesel", {**base, "newSession": False, "userData": "1"})
    assert (last["message"], last["continueSession"]) == (BALANCE, False)


async def test_arkesel_repeated_answer_is_a_new_input(client: Client) -> None:
    """No per-request id: the same answer twice is two key presses (documented)."""
    base = {"sessionID": "ark-2", "userID": "app", "msisdn": DIGITS, "network": "MTN"}
    await _post(client, "arkesel", {**base, "newSession": True, "userData": "*100#"})
    language = await _post(client, "arkesel", {**base, "newSession": False, "userData": "5"})
    assert language["message"].startswith(LANGUAGE)
    again = await _post(client, "arkesel", {**base, "newSession": False, "userData": "5"})
    assert again["message"] != language["message"]  # "5" again: an invalid choice here
    assert again["continueSession"] is True


async def test_nalo_session_dial_menu_balance_end(client: Client) -> None:
    base = {"USERID": "NALOTest", "MSISDN": DIGITS, "NETWORK": "MTN", "SESSIONID": "nalo-1"}
    first = await _post(client, "nalo", {**base, "MSGTYPE": True, "USERDATA": "*100#"})
    assert first == {"USERID": "NALOTest", "MSISDN": DIGITS, "MSG": MAIN, "MSGTYPE": True}
    last = await _post(client, "nalo", {**base, "MSGTYPE": False, "USERDATA": "1"})
    assert (last["MSG"], last["MSGTYPE"]) == (BALANCE, False)


async def test_beem_session_with_a_retry(client: Client) -> None:
    base = {"session_id": "beem-1", "msisdn": DIGITS, "serviceCode": "*100#", "operator": "vodacom"}
    first = await _post(
        client,
        "beem",
        {**base, "command": "initiate", "payload": {"request_id": "a1", "response": "*100#"}},
    )
    assert (first["command"], first["payload"]) == (
        "continue",
        {"request_id": "a1", "request": MAIN},
    )
    step = {**base, "command": "continue", "payload": {"request_id": "a2", "response": "5"}}
    language = await _post(client, "beem", step)
    assert language["payload"]["request"].startswith(LANGUAGE)
    assert await _post(client, "beem", step) == language  # a retry: same screen
    back = await _post(
        client,
        "beem",
        {**base, "command": "continue", "payload": {"request_id": "a3", "response": "0"}},
    )
    assert back["payload"]["request"] == MAIN
    last = await _post(
        client,
        "beem",
        {**base, "command": "continue", "payload": {"request_id": "a4", "response": "1"}},
    )
    assert (last["command"], last["payload"]["request"]) == ("terminate", BALANCE)


async def test_path_token_guards_an_aggregator_route(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, None, ussd={"path_tokens": {"nalo": TOKEN}})
    client = await aiohttp_client(create_app(settings))
    body = {
        "USERID": "N",
        "MSISDN": DIGITS,
        "MSGTYPE": True,
        "USERDATA": "*100#",
        "SESSIONID": "n-9",
    }
    assert (await client.post("/ussd/nalo", json=body)).status == 403
    answer = await client.post(f"/ussd/nalo/{TOKEN}", json=body)
    assert answer.status == 200
    assert json.loads(await answer.text())["MSG"] == MAIN


async def test_subscriber_rate_limit_answers_in_the_gateways_shape(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, None)
    settings = settings.model_copy(
        update={"security": settings.security.model_copy(update={"subscriber_rate": "1/minute"})}
    )
    client = await aiohttp_client(create_app(settings))
    body = {
        "sessionID": "ark-9",
        "userID": "app",
        "msisdn": DIGITS,
        "newSession": True,
        "userData": "*100#",
    }
    assert (await _post(client, "arkesel", body))["continueSession"] is True
    limited = await _post(client, "arkesel", {**body, "newSession": False, "userData": "1"})
    assert limited["continueSession"] is False and limited["sessionID"] == "ark-9"
    assert BALANCE not in limited["message"]


async def test_a_gateway_release_closes_the_session(client: Client) -> None:
    """Hubtel's `Release` (the subscriber ended) and Beem's `terminate` close our session:
    a later request on it gets the closing sentence, not the menu."""
    base = {"Mobile": DIGITS, "SessionId": "hub-9", "ServiceCode": "100"}
    await _post(client, "hubtel", {**base, "Type": "Initiation", "Message": "*100#", "Sequence": 1})
    await _post(client, "hubtel", {**base, "Type": "Release", "Message": "", "Sequence": 2})
    late = await _post(
        client, "hubtel", {**base, "Type": "Response", "Message": "1", "Sequence": 3}
    )
    assert late["Type"] == "Release" and BALANCE not in late["Message"]

    beem_base = {"session_id": "beem-9", "msisdn": DIGITS, "serviceCode": "*100#"}
    start = {"request_id": "b1", "response": ""}
    await _post(client, "beem", {**beem_base, "command": "initiate", "payload": start})
    await _post(
        client, "beem", {**beem_base, "command": "terminate", "payload": {"request_id": "b2"}}
    )
    after = {"request_id": "b3", "response": "1"}
    late_beem = await _post(client, "beem", {**beem_base, "command": "continue", "payload": after})
    assert late_beem["command"] == "terminate"
    assert BALANCE not in late_beem["payload"]["request"]


async def test_a_release_for_an_unknown_session_starts_nothing(client: Client) -> None:
    """A `Release`/`terminate` for a session we never saw (the dial's request was lost, or
    the gateway ends a session twice) is answered with an end and starts no session: no
    session counted, nothing stored, the next dial on that id is a plain dial."""
    before = await _metric(client, "hotline_sessions_started_total")
    release = await _post(
        client,
        "hubtel",
        {
            "Mobile": DIGITS,
            "SessionId": "hub-stray",
            "ServiceCode": "100",
            "Type": "Release",
            "Message": "",
            "Sequence": 4,
        },
    )
    assert release["Type"] == "Release" and BALANCE not in release["Message"]
    terminate = await _post(
        client,
        "beem",
        {
            "session_id": "beem-stray",
            "msisdn": DIGITS,
            "serviceCode": "*100#",
            "command": "terminate",
            "payload": {"request_id": "b9"},
        },
    )
    assert terminate["command"] == "terminate"
    assert await _metric(client, "hotline_sessions_started_total") == before
    dial = await _post(
        client,
        "hubtel",
        {
            "Mobile": DIGITS,
            "SessionId": "hub-stray",
            "ServiceCode": "100",
            "Type": "Initiation",
            "Message": "*100#",
            "Sequence": 1,
        },
    )
    assert dial["Type"] == "Response"
    assert await _metric(client, "hotline_sessions_started_total") == before + 1


async def _metric(client: Client, name: str) -> float:
    text = await (await client.get("/metrics")).text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )
