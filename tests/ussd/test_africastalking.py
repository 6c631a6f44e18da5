"""Africa's Talking dialect and form decoding: plain data in, plain data out."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.base.config import UssdSettings
from hotline.base.errors import BadGatewayRequest
from ussd.dialects import africastalking as at
from ussd.form import decode_form
from ussd.page import UssdPage

SETTINGS = UssdSettings()


def _form(**changes: str | None) -> dict[str, str]:
    form = {
        "sessionId": "ATUid_7c898d72eb11f723ed8ea05ef232f279",
        "serviceCode": "*100#",
        "phoneNumber": "+8613800138000",
        "networkCode": "46000",
        "text": "",
    }
    for name, value in changes.items():
        if value is None:
            del form[name]
        else:
            form[name] = value
    return form


def test_dial_is_a_start_event() -> None:
    event = at.parse(_form(), SETTINGS)
    assert (event.channel, event.dialect, event.kind, event.text) == (
        "ussd",
        "africastalking",
        "start",
        "",
    )
    assert event.session_id == "ATUid_7c898d72eb11f723ed8ea05ef232f279"
    assert event.subscriber == "+8613800138000"
    assert event.entry == "*100#"
    assert (event.inputs, event.request_id, event.follows) == ((), "", None)


@pytest.mark.parametrize(
    ("text", "inputs", "follows"),
    [
        ("1", ("1",), ""),
        ("1*2", ("1", "2"), "1"),
        ("1*0*2", ("1", "0", "2"), "1*0"),
        ("1**", ("1", "*"), "1"),  # the subscriber typed "*"
        ("5**5", ("5", "*5"), "5"),
        ("5*", ("5", ""), "5"),  # an empty reply
        ("5*1*00", ("5", "1", "00"), "5*1"),
        ("*", ("*",), ""),
        ("1#", ("1#",), ""),
        ("a", ("a",), ""),  # letters typed with multi-tap are input, not an error
        ("1* 2 ", ("1", "2"), "1"),  # spaces around an input are not part of it
        ("中", ("中",), ""),
    ],
)
def test_a_transcript_is_plain_inputs(text: str, inputs: tuple[str, ...], follows: str) -> None:
    """The dialect decodes the `*`-joined transcript: the engine sees plain inputs."""
    event = at.parse(_form(text=text), SETTINGS)
    assert event.kind == "input"
    assert (event.text, event.inputs) == (inputs[-1], inputs)
    assert (event.request_id, event.follows) == (text, follows)


def test_network_code_is_optional_and_unknown_fields_are_ignored() -> None:
    event = at.parse(_form(networkCode=None, extra="whatever"), SETTINGS)
    assert event.kind == "start"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sessionId": None}, "missing form field(s): sessionId"),
        ({"text": None, "phoneNumber": None}, "missing form field(s): phoneNumber, text"),
        ({"serviceCode": None}, "missing form field(s): serviceCode"),
        ({"sessionId": ""}, "sessionId"),
        ({"sessionId": "a" * 129}, "sessionId"),
        ({"sessionId": "abc def"}, "sessionId"),
        ({"sessionId": "abc\n"}, "sessionId"),
        ({"phoneNumber": ""}, "phoneNumber"),
        ({"phoneNumber": "+86 138"}, "phoneNumber"),
        ({"phoneNumber": "1" * 21}, "phoneNumber"),
        ({"phoneNumber": "abc"}, "phoneNumber"),
        ({"serviceCode": ""}, "serviceCode"),
        ({"serviceCode": "*100#<script>"}, "serviceCode"),
        ({"networkCode": "x"}, "networkCode"),
        ({"text": "1*\x00"}, "control characters"),
        ({"text": "1\n2"}, "control characters"),
        ({"text": "*" * 481}, "text is longer than 480"),
        ({"text": "1*" * 3000}, "text is longer than 480"),
    ],
)
def test_malformed_requests_say_why(changes: dict[str, str | None], reason: str) -> None:
    with pytest.raises(BadGatewayRequest) as info:
        at.parse(_form(**changes), SETTINGS)
    assert reason in info.value.reason
    assert info.value.status_hint == 400


def test_text_limit_is_configurable() -> None:
    with pytest.raises(BadGatewayRequest, match="longer than 16"):
        at.parse(_form(text="1*" * 9), UssdSettings(max_text_chars=16))


def test_reply_continue_and_end() -> None:
    body, headers = at.reply(UssdPage("话费查询\n1.话费余额", ends=False, pages=1), "main")
    assert body == "CON 话费查询\n1.话费余额"
    assert headers == {"Content-Type": "text/plain; charset=utf-8", "at-ussd-hop-metadata": "main"}
    body, _ = at.reply(UssdPage("感谢使用，再见。", ends=True, pages=1), "goodbye")
    assert body == "END 感谢使用，再见。"


@pytest.mark.parametrize(
    ("label", "header"),
    [
        ("show_balance", "show_balance"),
        ("_busy", "_busy"),
        ("a|b c", "a_b_c"),
        ("状态", "__"),
        ("x" * 150, "x" * 99),
        ("", "step"),
    ],
)
def test_hop_metadata_is_a_safe_static_label(label: str, header: str) -> None:
    assert at.hop_label(label) == header
    _, headers = at.reply(UssdPage("话费查询", ends=False, pages=1), label)
    value = headers["at-ussd-hop-metadata"]
    assert len(value) <= 99 and "|" not in value and value.isascii()


# ----------------------------------------------------------------- form bodies


def test_form_decodes_percent_escapes() -> None:
    body = (
        b"phoneNumber=%2B254739495441&serviceCode=%2A384%2A44135%23&text="
        b"&sessionId=AT1&networkCode=99999"
    )
    assert decode_form(body) == {
        "phoneNumber": "+254739495441",
        "serviceCode": "*384*44135#",
        "text": "",
        "sessionId": "AT1",
        "networkCode": "99999",
    }


def test_empty_body_has_no_fields() -> None:
    assert decode_form(b"") == {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"text=\xff\xfe", "not UTF-8"),
        (b"text=%FF%FE", "not valid UTF-8"),
        (b"text=1&text=2", "'text' appears more than once"),
        (b'{"text": "1"}', "not a form"),
        (b"&".join(b"f%d=1" % i for i in range(40)), "more than 32 form fields"),
    ],
)
def test_bad_form_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(BadGatewayRequest, match=reason):
        decode_form(body)


def _by_the_rules(body: bytes) -> dict[str, str] | str:
    """The strict rules spelled out with the standard library: fields, or the reason."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        return f"body is not UTF-8 (byte {exc.start})"
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            errors="strict",
            max_num_fields=32,
        )
    except UnicodeDecodeError:
        return "a form field is not valid UTF-8 after percent-decoding"
    except ValueError as exc:
        if "Max number" in str(exc):
            return "more than 32 form fields"
        return "body is not a form (name=value pairs joined by &)"
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            return f"form field {name[:40]!r} appears more than once"
        fields[name] = value
    return fields


_PIECES = st.sampled_from(
    [
        "a",
        "b",
        "=",
        "&",
        "%",
        "+",
        " ",
        "\n",
        "\x1f",
        "中",
        "2",
        "B",
        "f",
        "8",
        "%2B",
        "%2A",
        "%23",
        "%e4%b8%ad",
        "%ff",
        "%C3",
        "%28",
        "%7f",
        "%80",
        "%2",
        "\u3000",
        "&&",
        "==",
    ]
)


@given(st.lists(_PIECES, max_size=24).map("".join), st.binary(max_size=2))
def test_decoding_follows_the_strict_rules(text: str, tail: bytes) -> None:
    """The fast path (yarl) and the standard library agree on every body, odd or not."""
    for body in (text.encode(), text.encode() + tail, "&".join([text] * 20).encode()):
        try:
            decoded: dict[str, str] | str = decode_form(body)
        except BadGatewayRequest as exc:
            decoded = exc.reason
        assert decoded == _by_the_rules(body), body
