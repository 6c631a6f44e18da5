"""Capture every log line of full USSD sessions and fail on any number or balance in them."""

from __future__ import annotations

import io
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from yarl import URL

from hotline.base.logs import redact, scrub, setup_logging
from hotline.base.privacy import Pseudonymizer
from hotline.web.app import create_app
from tests.conftest import RedisServer
from tests.web.conftest import AT, PHONE, at_form

# Every common way to write the demo numbers, and the demo balance (12.50 yuan = 1250 fen).
FORBIDDEN = [
    re.compile(pattern)
    for pattern in (
        r"\+?86\s?1380013800[0-5]",
        r"(?<!\d)1380013800[0-5](?!\d)",
        r"138[ -]?0013[ -]?800[0-5]",
        r"(?<![0-9A-Za-z])12\.50(?![0-9])",
        r"(?<![0-9A-Za-z.])1250(?![0-9A-Za-z])",
        r"(?<![0-9A-Za-z.])30\.00(?![0-9])",  # 13800138005's balance
        r"元",
    )
]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = setup_logging(json_logs=True, level="DEBUG", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)


@pytest.mark.parametrize(
    "leak",
    [
        "+8613800138000",
        "8613800138000",
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "12.50元",
        "CNY 12.50",
        "¥1250",
        "balance 12.50",
        # URL-encoded (a form body quoted by aiohttp), JSON- and repr-escaped, keyed.
        "%2B8613800138000",
        "phoneNumber=%2B8613800138000&text=",
        "12.50%E5%85%83",
        "balance%3D12.50",
        "%252B8613800138000",
        "138%200013%208000",
        "\\u00a51250",
        "b'\\xc2\\xa51250'",
        '{"amount_minor": 1250}',
        '{\\"amount_minor\\":1250}',
        '{"main_balance":{"amount_minor":1250,"currency":"CNY"}}',
        "+86١٣٨٠٠١٣٨٠٠٠",
    ],
)
def test_scrubber_redacts(leak: str) -> None:
    out = scrub(f"value={leak};")
    assert "[redacted]" in out
    assert re.search(r"\d", out) is None, out


def test_scrubber_keeps_ids_and_pseudonyms() -> None:
    text = "request_id=0c6b41b51efc47db8f915086c0e0895f subscriber=7bf2c299ce2e9175a6b5 v3.14.5"
    assert scrub(text) == text


@given(
    st.one_of(
        st.text("0123456789abcdef", max_size=40),
        st.text("0123456789abcdefABC.+- 元¥$,", max_size=24),
        st.text(max_size=24),
    )
)
def test_scrubber_shortcuts_change_nothing(text: str) -> None:
    """Text the scrubber returns early (no digit; a hex word) is text the full path keeps."""
    assert scrub(text) == redact(text)


async def test_full_sessions_leave_no_number_or_balance_in_logs(
    aiohttp_client: Any,
    settings_factory: Any,
    stoppable_redis: RedisServer,
    captured: io.StringIO,
) -> None:
    settings = settings_factory(
        redis_url=stoppable_redis.url, security={"subscriber_rate": "16/minute"}
    )
    client = await aiohttp_client(create_app(settings))
    conversations = [
        ("p-1", PHONE, ["", "1"]),  # main balance 12.50
        ("p-2", PHONE, ["", "2"]),  # data
        ("p-3", PHONE, ["", "4"]),  # summary
        ("p-4", PHONE, ["", "9", "9*8", "9*8*3"]),  # invalid inputs, then voice/SMS
        ("p-5", "+8613800138005", ["", "5", "5*2", "5*2*1"]),  # language switch, then balance
        ("p-6", "8613800138003", ["", "1"]),  # suspended
        ("p-7", PHONE, ["", "1", "1"]),  # a repeated request
    ]
    for session, phone, texts in conversations:
        for text in texts:
            response = await client.post(AT, data=at_form(session, text, phone))
            assert response.status == 200
    # Redis goes away mid-session: an apology, and the error path logs too.
    stoppable_redis.stop()
    await client.post(AT, data=at_form("p-8", "", PHONE))
    stoppable_redis.start()
    # PHONE has made 14 requests; the limit (16/minute) answers the 17th politely.
    for i in range(3):
        await client.post(AT, data=at_form(f"p-limit-{i}"))
    await client.post(
        f"{AT}/events",
        data={
            "sessionId": "p-1",
            "status": "Failed",
            "hopsCount": "2",
            "phoneNumber": PHONE,
            "input": "1",
            "lastAppResponse": "END 您的话费余额为12.50元。",
            "errorMessage": "timeout for +8613800138000",
            "cost": "CNY 0.10",
        },
    )
    # A third-party library careless with a number is scrubbed anyway.
    logging.getLogger("some.library").warning("lookup for %s gave %s", PHONE, "12.50")

    output = captured.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "hotline.access"]
    assert len(access) >= 20
    pseudonym = Pseudonymizer("ops-test-secret")(PHONE)
    assert any(line.get("subscriber") == pseudonym for line in access)
    for line in access:
        if line["route"] == AT:
            assert {"request_id", "dialect", "outcome", "latency_ms", "subscriber"} <= line.keys()
            if line["outcome"] in ("continue", "end", "repeat"):
                assert "state" in line
    assert any(line["outcome"] == "apology" for line in access)
    assert any(line.get("rejected") == "subscriber_rate" for line in access)
    for pattern in FORBIDDEN:
        found = pattern.search(output)
        assert found is None, (
            f"{pattern.pattern!r} leaked: …{output[max(0, found.start() - 120) : found.end() + 40]}…"
        )


def test_terminal_lines_are_human_readable_and_scrubbed() -> None:
    stream = io.StringIO()
    handler = setup_logging(json_logs=False, level="INFO", stream=stream)
    try:
        logging.getLogger("hotline.access").info(
            "request", extra={"fields": {"route": AT, "status": 200, "outcome": "end"}}
        )
        logging.getLogger("x").warning("caller %s", PHONE)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
    text = stream.getvalue()
    assert "request  route=/ussd/africastalking status=200" in text
    assert "outcome=end" in text.replace("\n", " ").replace(" ", "")
    assert "caller [redacted]" in text
    assert not text.lstrip().startswith("{")


async def test_full_calls_leave_no_number_or_balance_in_logs(
    aiohttp_client: Any,
    settings_factory: Any,
    redis_url: str,
    captured: io.StringIO,
    tmp_path: Path,
) -> None:
    token = "twilio-token-privacy"
    app = create_app(
        settings_factory(
            redis_url=redis_url,
            security={"twilio_auth_token": token},
            ivr={"audio_dir": tmp_path / "audio", "warm_prompts": False},
        )
    )
    client = await aiohttp_client(app)
    validator = RequestValidator(token)

    async def twilio(path: str, **fields: str) -> ET.Element:
        form = {"CallSid": "CA-privacy", "From": PHONE, "To": "+8610086", **fields}
        url = str(client.make_url(path))
        headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
        response = await client.post(path, data=form, headers=headers)
        assert response.status == 200, await response.text()
        return ET.fromstring(await response.text())

    doc = await twilio("/ivr/twilio/voice", CallStatus="ringing")
    gather = doc.find("Gather")
    assert gather is not None
    action = str(URL(gather.attrib["action"]).relative())
    spoken = await twilio(action, Digits="1")  # the balance, spoken
    for play in spoken.iter("Play"):
        audio = await client.get(URL(play.text or "").path)
        assert audio.status == 200
    # Africa's Talking voice: a call, a key, the end-of-call notice.
    at_call = {
        "isActive": "1",
        "sessionId": "ATV-privacy",
        "callerNumber": "+8613800138005",
        "destinationNumber": "+8610086",
        "direction": "Inbound",
    }
    assert (await client.post("/ivr/africastalking", data=at_call)).status == 200
    await client.post("/ivr/africastalking", data={**at_call, "dtmfDigits": "1"})
    await client.post(
        "/ivr/africastalking", data={**at_call, "isActive": "0", "durationInSeconds": "12"}
    )
    # A forged request is refused and logged without its number too.
    forged = await client.post(
        "/ivr/twilio/voice",
        data={"CallSid": "CA-x", "From": PHONE},
        headers={"X-Twilio-Signature": "forged"},
    )
    assert forged.status == 403

    output = captured.getvalue()
    access = [
        json.loads(line)
        for line in output.splitlines()
        if line.strip() and json.loads(line)["logger"] == "hotline.access"
    ]
    assert any(line.get("channel") == "ivr" and line.get("state") for line in access)
    assert any(line.get("rejected") == "signature" for line in access)
    for pattern in FORBIDDEN:
        found = pattern.search(output)
        assert found is None, (
            f"{pattern.pattern!r} leaked: …{output[max(0, found.start() - 120) : found.end() + 40]}…"
        )
