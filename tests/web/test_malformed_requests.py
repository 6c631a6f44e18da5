"""Hostile and malformed requests at every endpoint (issue 13): never a crash, never an
apology for what is the client's fault, never a number in the log.

Requests are written as raw bytes to the test server's socket: aiohttp's client would
refuse (or repair) most of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientSession, web

from hotline.web.app import create_app

ADMIN = "admin-token-malformed"
TWILIO = "twilio-token-malformed"
Headers = list[tuple[bytes, bytes]]


class Reply:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split()[1]) if lines and lines[0].startswith(b"HTTP/") else 0
        self.text = self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<{self.status} {self.text[:120]!r}>"


async def raw_request(
    client: Any,
    path: str | bytes,
    body: bytes = b"",
    headers: Headers | None = None,
    *,
    method: bytes = b"POST",
    host: bytes = b"127.0.0.1",
    content_type: bytes | None = b"application/x-www-form-urlencoded",
) -> Reply:
    """One request written byte for byte; the whole answer (the server closes)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    target = path.encode("ascii") if isinstance(path, str) else path
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host]
    if content_type is not None:
        lines.append(b"Content-Type: " + content_type)
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    lines += [name + b": " + value for name, value in headers or ()]
    writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return Reply(raw)


@pytest.fixture
async def client(aiohttp_client: Any, settings_factory: Any, redis_url: str, tmp_path: Path) -> Any:
    settings = settings_factory(
        redis_url=redis_url,
        security={"admin_token": ADMIN, "twilio_auth_token": TWILIO},
        ivr={"audio_dir": tmp_path / "audio", "warm_prompts": False},
    )
    return await aiohttp_client(create_app(settings))


class RealServer:
    """The app on a real socket, run as `hotline serve` runs it (no handler cancellation),
    with `get` for its own endpoints."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self.runner, self.host, self.port = runner, host, port

    async def metrics(self) -> str:
        url = f"http://{self.host}:{self.port}/metrics"
        async with ClientSession() as session, session.get(url) as response:
            return await response.text()


@pytest.fixture
async def real_server(
    settings_factory: Any, redis_url: str, tmp_path: Path
) -> AsyncIterator[RealServer]:
    settings = settings_factory(
        redis_url=redis_url, ivr={"audio_dir": tmp_path / "audio", "warm_prompts": False}
    )
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield RealServer(runner, host, port)
    await runner.cleanup()


@pytest.fixture
async def unsigned_client(
    aiohttp_client: Any, settings_factory: Any, redis_url: str, tmp_path: Path
) -> Any:
    """No Twilio token: the voice handler itself meets the odd Host."""
    settings = settings_factory(
        redis_url=redis_url, ivr={"audio_dir": tmp_path / "audio", "warm_prompts": False}
    )
    return await aiohttp_client(create_app(settings))


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- defect 4: /admin/reload and an undecodable bearer token ------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer \xe9\xe9",
        b"Bearer \xff",
        b"bearer \xc3\xa9",
        b"\xe9\xe9 token",
        b"Bearer \xed\xa0\x80",
    ],
)
async def test_admin_reload_refuses_undecodable_bearer_tokens(
    client: Any, authorization: bytes
) -> None:
    reply = await raw_request(
        client, "/admin/reload", headers=[(b"Authorization", authorization)], content_type=None
    )
    assert reply.status == 401, reply
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, "hotline_errors_total") == 0


@pytest.mark.parametrize("token", ["%C3%A9", "%ED%A0%80", "%FF", "\u00e9"])
async def test_path_tokens_compare_any_bytes(
    aiohttp_client: Any, settings_factory: Any, redis_url: str, token: str
) -> None:
    settings = settings_factory(
        redis_url=redis_url, security={"at_path_token": "s3cret-path-token-16"}
    )
    client = await aiohttp_client(create_app(settings))
    form = b"sessionId=pt&serviceCode=*100%23&phoneNumber=%2B8613800138000&text="
    reply = await raw_request(client, f"/ussd/africastalking/{quote(token, safe='%')}", form)
    assert reply.status == 403, reply


# --- defect 5: an odd Host header and the Twilio signature ------------------------------

_VOICE_FORM = b"CallSid=CA-host&From=%2B8613800138000&To=%2B8610086&CallStatus=ringing"
_ODD_HOSTS = [b"127.0.0.1:abc", b"127.0.0.1:999999", b"h\xe9st", b"h\xc3\xa9st:80", b"[::1", b":"]


@pytest.mark.parametrize("host", _ODD_HOSTS)
@pytest.mark.parametrize("signature", [None, b"c2lnbmF0dXJl"])
async def test_odd_host_gets_403_not_an_apology(
    client: Any, host: bytes, signature: bytes | None
) -> None:
    headers = [(b"X-Twilio-Signature", signature)] if signature is not None else []
    reply = await raw_request(client, "/ivr/twilio/voice", _VOICE_FORM, headers, host=host)
    assert reply.status in (400, 403), reply
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, "hotline_errors_total") == 0


@pytest.mark.parametrize("host", _ODD_HOSTS)
async def test_odd_host_without_signature_check_is_400(unsigned_client: Any, host: bytes) -> None:
    reply = await raw_request(unsigned_client, "/ivr/twilio/voice", _VOICE_FORM, host=host)
    assert reply.status == 400, reply
    metrics = await (await unsigned_client.get("/metrics")).text()
    assert _metric(metrics, "hotline_errors_total") == 0


@pytest.mark.parametrize("target", [b"/ivr/twilio/voice?x=\xe9", b"/ivr/twilio/voice?x=%ED%A0%80"])
async def test_odd_query_string_is_403(client: Any, target: bytes) -> None:
    headers = [(b"X-Twilio-Signature", b"c2lnbmF0dXJl")]
    reply = await raw_request(client, target, _VOICE_FORM, headers)
    assert reply.status in (400, 403), reply
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, "hotline_errors_total") == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:abc/ivr",
        "http://127.0.0.1:999999/ivr",
        "http://h\udce9st/ivr",
        "http://[::1/x",
    ],
)
def test_twilio_verify_is_false_for_urls_no_platform_signs(url: str) -> None:
    from ivr.auth import verify

    assert verify(url, {"From": "+8613800138000"}, "c2lnbmF0dXJl", TWILIO) is False


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("example.org", True),
        ("example.org:8443", True),
        ("127.0.0.1:80", True),
        ("[2001:db8::1]:443", True),
        ("127.0.0.1:abc", False),
        ("127.0.0.1:999999", False),
        ("127.0.0.1:0", False),
        ("h\udce9st", False),
        ("hést", False),
        ("[::1", False),
        ("[nothex]", False),
        (":", False),
        ("", False),
    ],
)
def test_authority_ok(host: str, ok: bool) -> None:
    from hotline.web.security import authority_ok

    assert authority_ok(host) is ok


# --- defect 3: caller numbers in digits of another script --------------------------------

_SCRIPTS = [
    "+86١٣٨٠٠١٣٨٠٠٠",
    "+８６１３８００１３８０００",
    "+86१३८००१३८०००",
    "+8613800138000\u00b2",
]


def _form(**fields: str) -> bytes:
    return "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in fields.items()).encode()


@pytest.mark.parametrize("phone", _SCRIPTS)
async def test_ussd_refuses_non_ascii_digits_with_400(client: Any, phone: str) -> None:
    body = _form(sessionId="u-script", serviceCode="*100#", phoneNumber=phone, text="")
    reply = await raw_request(client, "/ussd/africastalking", body)
    assert reply.status == 400, reply
    assert "phoneNumber" in reply.text
    events = _form(sessionId="u-script", status="Success", hopsCount="1", phoneNumber=phone)
    reply = await raw_request(client, "/ussd/africastalking/events", events)
    assert reply.status == 400, reply
    assert "phoneNumber" in reply.text
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, "hotline_errors_total") == 0


@pytest.mark.parametrize("phone", _SCRIPTS)
async def test_voice_refuses_non_ascii_digits_with_400(client: Any, phone: str) -> None:
    from twilio.request_validator import RequestValidator

    fields = {"CallSid": "CA-script", "From": phone, "To": "+8610086", "CallStatus": "ringing"}
    url = str(client.make_url("/ivr/twilio/voice"))
    signed = RequestValidator(TWILIO).compute_signature(url, fields)
    reply = await raw_request(
        client,
        "/ivr/twilio/voice",
        _form(**fields),
        [(b"X-Twilio-Signature", signed.encode())],
        host=client.make_url("/").authority.encode(),
    )
    assert reply.status == 400, reply
    assert "From" in reply.text
    at = _form(isActive="1", sessionId="ATV-script", callerNumber=phone, direction="Inbound")
    reply = await raw_request(client, "/ivr/africastalking", at)
    assert reply.status == 400, reply
    assert "callerNumber" in reply.text
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, "hotline_errors_total") == 0


def test_pseudonyms_are_total_and_script_blind() -> None:
    from hotline.base.privacy import Pseudonymizer, ascii_digits, canonical_msisdn

    pseudonym = Pseudonymizer("s")
    ascii_one = pseudonym("+8613800138000")
    for phone in _SCRIPTS[:3]:
        assert ascii_digits(phone) == "+8613800138000"
        assert canonical_msisdn(phone) == "13800138000"
        assert pseudonym(phone) == ascii_one
    for odd in ["\udce9", "²³", "", "+", "anonymous", "client:alice"]:
        assert len(pseudonym(odd)) == 20


# --- defect 6: a body that cannot be decoded ---------------------------------------------

_GATEWAY_PATHS = [
    "/ussd/africastalking",
    "/ussd/africastalking/events",
    "/ivr/twilio/voice",
    "/ivr/africastalking",
]


@pytest.mark.parametrize("path", _GATEWAY_PATHS)
@pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
async def test_corrupt_content_encoding_is_400_with_a_reason(
    unsigned_client: Any, path: str, encoding: bytes
) -> None:
    garbage = b"phoneNumber=%2B8613800138000&not-really-compressed"
    reply = await raw_request(unsigned_client, path, garbage, [(b"Content-Encoding", encoding)])
    assert reply.status == 400, reply
    assert "Content-Encoding" in reply.text, reply
    await asyncio.sleep(0.05)  # aiohttp drains the rest of the body after the answer
    metrics = await (await unsigned_client.get("/metrics")).text()
    assert _metric(metrics, "hotline_errors_total") == 0
    assert _metric(metrics, 'hotline_client_errors_total{kind="bad_body"}') == 1


# --- noise: a client that hangs up mid-body ----------------------------------------------


async def _hang_up_mid_body(client: Any, path: str) -> None:
    _, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\n"
        "sessionId=gone&phoneNumber=%2B86138".encode()
    )
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()


@pytest.mark.parametrize("path", _GATEWAY_PATHS)
async def test_client_hanging_up_mid_body_is_a_client_abort_not_an_error(
    real_server: RealServer, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _hang_up_mid_body(real_server, path)
    for _ in range(100):
        metrics = await real_server.metrics()
        if _metric(metrics, 'hotline_client_errors_total{kind="client_abort"}'):
            break
        await asyncio.sleep(0.02)
    assert _metric(metrics, 'hotline_client_errors_total{kind="client_abort"}') >= 1
    assert _metric(metrics, "hotline_errors_total") == 0
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [(r.name, r.getMessage()) for r in loud]
    assert all(r.exc_info is None and not r.exc_text for r in caplog.records)


# --- defect 7: numbers and balances in what aiohttp logs about malformed requests ---------

_NUMBER = b"%2B8613800138000"
_FORM = b"sessionId=leak&serviceCode=*100%23&phoneNumber=" + _NUMBER + b"&text=12.50%E5%85%83"
_JSON = b'{"msisdn":"+8613800138000","main_balance":{"amount_minor":1250}}'


def _post(path: bytes, body: bytes, *extra: bytes, length: int | None = None) -> bytes:
    head = [
        b"POST " + path + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Content-Type: application/x-www-form-urlencoded",
        b"Content-Length: " + str(len(body) if length is None else length).encode(),
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


_MALFORMED = {
    # More body than Content-Length: the rest is read as the next request and quoted.
    "pipelined_form": _post(b"/ussd/africastalking", _FORM + _FORM, length=len(_FORM)),
    "after_close": _post(b"/ivr/africastalking", _FORM + _JSON, b"Connection: close", length=5),
    "gzip_garbage": _post(b"/ussd/africastalking", _FORM, b"Content-Encoding: gzip"),
    "deflate_garbage": _post(b"/ivr/twilio/voice", _JSON, b"Content-Encoding: deflate"),
    "bad_chunk": b"POST /ussd/africastalking HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
    b"\r\n\r\nzz" + _FORM + b"\r\n" + _JSON + b"\r\n",
    "header_char": _post(b"/ussd/africastalking", _FORM, b"X-Caller: \x01" + _NUMBER),
    "request_line": b"P\x00ST /ussd/africastalking?phoneNumber=" + _NUMBER + b" HTTP/1.1\r\n\r\n",
    "second_bad_method": _post(b"/ussd/africastalking", _FORM)
    + b"G\x01T /?msisdn="
    + _NUMBER
    + b"&amount_minor=1250 HTTP/1.1\r\n\r\n",
    "json_body": _post(b"/ivr/twilio/voice", _JSON * 2, length=len(_JSON)),
}


async def _send(server: RealServer, data: bytes) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(data)
    await writer.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(), 2)
    writer.close()


async def test_malformed_requests_leave_no_number_in_the_log(real_server: RealServer) -> None:
    from hotline.base.logs import setup_logging
    from tests.web.test_log_privacy import FORBIDDEN

    stream = io.StringIO()
    handler = setup_logging(json_logs=True, level="DEBUG", stream=stream)
    try:
        for data in _MALFORMED.values():
            await _send(real_server, data)
        await asyncio.sleep(0.2)  # aiohttp logs some after the answer, while draining
        # A careless record of a library, escaped every way a body can be.
        logging.getLogger("aiohttp.web").error(
            "body %r json %s", _FORM, _JSON.decode().replace('"', '\\"')
        )
        logging.getLogger("asyncio").warning("b'\\xc2\\xa51250' and \\u00a512.50")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
    output = stream.getvalue()
    assert "aiohttp.server" in output  # aiohttp did log these requests
    for pattern in [*FORBIDDEN, re.compile("%2B86", re.I)]:
        found = pattern.search(output)
        assert found is None, (
            f"{pattern.pattern!r} leaked: …{output[max(0, found.start() - 160) : found.end() + 40]}…"
        )
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    wire = [line for line in lines if line["logger"] == "aiohttp.server"]
    assert all(line["level"] == "info" and "exc" not in line for line in wire), wire
    metrics = await real_server.metrics()
    assert _metric(metrics, "hotline_errors_total") == 0
    assert _metric(metrics, 'hotline_client_errors_total{kind="bad_framing"}') >= 4
