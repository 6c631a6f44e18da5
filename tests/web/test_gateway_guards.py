"""Every rejection path through HTTP, on the real app (create_app) with real Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from hotline.web.app import create_app
from hotline.web.guards import Gateway, add_token_routes
from hotline.web.keys import SETTINGS
from tests.web.conftest import AT, OTHER_PHONE, PHONE, at_form, sample

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
TOKEN = "twilio-auth-token-for-tests"
PATH_TOKEN = "pAtH-t0ken-0123456789abcdef"


@pytest.fixture
def make_client(aiohttp_client: Any, settings_factory: Any, redis_url: str) -> MakeClient:
    async def make(**extra: Any) -> Client:
        app = create_app(settings_factory(redis_url=redis_url, **extra))

        async def voice(request: web.Request) -> web.Response:  # stands in for ivr.routes
            form = await request.post()
            return web.Response(text=f"<Response><Say>{len(form)}</Say></Response>")

        existing = {r.resource.canonical for r in app.router.routes() if r.resource}
        for path in ("/ivr/twilio/voice", "/ivr/africastalking"):
            if path not in existing:
                app.router.add_post(path, voice)
                token = app[SETTINGS].security.at_path_token
                if path == "/ivr/africastalking" and token is not None:
                    # What create_app does for the voice routes once they are mounted.
                    add_token_routes(
                        app,
                        Gateway(
                            prefix=path,
                            channel="ivr",
                            dialect="africastalking",
                            path_token=token.get_secret_value(),
                        ),
                    )
        client: Client = await aiohttp_client(app)
        return client

    return make


async def metrics_text(client: Client) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    return await response.text()


async def test_at_source_ip_not_allowed(make_client: MakeClient) -> None:
    client = await make_client(security={"at_allowed_cidrs": ["203.0.113.0/24"]})
    response = await client.post(AT, data=at_form("ip-1"))
    assert response.status == 403
    assert await response.text() == "Forbidden"
    text = await metrics_text(client)
    assert sample(text, "hotline_rejected_requests_total", reason="source_ip") == 1


async def test_at_forged_forwarded_for_from_untrusted_peer(make_client: MakeClient) -> None:
    client = await make_client(security={"at_allowed_cidrs": ["203.0.113.0/24"]})
    response = await client.post(
        AT, data=at_form("ip-2"), headers={"X-Forwarded-For": "203.0.113.5"}
    )
    assert response.status == 403


async def test_at_allowed_through_trusted_proxy(make_client: MakeClient) -> None:
    client = await make_client(
        security={"at_allowed_cidrs": ["203.0.113.0/24"], "trusted_proxies": ["127.0.0.1"]}
    )
    ok = await client.post(AT, data=at_form("ip-3"), headers={"X-Forwarded-For": "203.0.113.5"})
    assert ok.status == 200
    assert (await ok.text()).startswith("CON ")
    # A client-written entry left of the proxy's own does not help an outsider.
    bad = await client.post(
        AT, data=at_form("ip-4"), headers={"X-Forwarded-For": "203.0.113.5, 198.51.100.1"}
    )
    assert bad.status == 403


async def test_at_loopback_allowed_directly(make_client: MakeClient) -> None:
    client = await make_client(security={"at_allowed_cidrs": ["127.0.0.0/8"]})
    response = await client.post(AT, data=at_form("ip-5"))
    assert response.status == 200


async def test_at_path_token(make_client: MakeClient) -> None:
    client = await make_client(security={"at_path_token": PATH_TOKEN})
    bare = await client.post(AT, data=at_form("tok-1"))
    assert bare.status == 403
    assert await bare.text() == "Forbidden"
    wrong = await client.post(f"{AT}/{PATH_TOKEN[:-1]}x", data=at_form("tok-1"))
    assert wrong.status == 403
    events_bare = await client.post(
        f"{AT}/events", data={"sessionId": "tok-1", "status": "Success"}
    )
    assert events_bare.status == 403
    ok = await client.post(f"{AT}/{PATH_TOKEN}", data=at_form("tok-1"))
    assert ok.status == 200
    assert (await ok.text()).startswith("CON ")
    ok2 = await client.post(f"{AT}/{PATH_TOKEN}", data=at_form("tok-1", "1"))
    assert (await ok2.text()).startswith("END ")
    events = await client.post(
        f"{AT}/{PATH_TOKEN}/events",
        data={"sessionId": "tok-1", "status": "Success", "hopsCount": "2", "phoneNumber": PHONE},
    )
    assert events.status == 200
    text = await metrics_text(client)
    assert sample(text, "hotline_rejected_requests_total", reason="path_token") == 3
    assert PATH_TOKEN not in text


async def test_africastalking_voice_is_guarded_like_ussd(make_client: MakeClient) -> None:
    client = await make_client(
        security={
            "at_allowed_cidrs": ["127.0.0.0/8"],
            "at_path_token": PATH_TOKEN,
            "subscriber_rate": "1/minute",
        }
    )
    call = {
        "isActive": "1",
        "sessionId": "ATVid_1",
        "callerNumber": PHONE,
        "destinationNumber": "+8610086",
        "direction": "Inbound",
    }
    assert (await client.post("/ivr/africastalking", data=call)).status == 403
    ok = await client.post(f"/ivr/africastalking/{PATH_TOKEN}", data=call)
    assert ok.status == 200
    limited = await client.post(f"/ivr/africastalking/{PATH_TOKEN}", data=call)
    assert limited.status == 200
    assert limited.content_type == "application/xml"
    body = await limited.text()
    assert '<Say language="zh-CN">您查询过于频繁，请稍后再试。</Say>' in body
    assert "<Hangup" not in body
    text = await metrics_text(client)
    assert (
        sample(
            text,
            "hotline_rejected_requests_total",
            channel="ivr",
            dialect="africastalking",
            reason="subscriber_rate",
        )
        == 1
    )


async def _voice(
    client: Client, url_path: str, params: dict[str, str], signature: str | None, **headers: str
) -> int:
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    response = await client.post(url_path, data=params, headers=headers)
    return response.status


CALL = {"CallSid": "CA0001", "From": PHONE, "To": "+8610086", "CallStatus": "ringing"}


async def test_twilio_signature_paths(make_client: MakeClient) -> None:
    client = await make_client(security={"twilio_auth_token": TOKEN})
    validator = RequestValidator(TOKEN)
    local = str(client.make_url("/ivr/twilio/voice"))
    assert await _voice(client, "/ivr/twilio/voice", CALL, None) == 403  # unsigned
    assert await _voice(client, "/ivr/twilio/voice", CALL, "bm90IGEgc2lnbmF0dXJl") == 403
    elsewhere = validator.compute_signature(local.replace("/voice", "/gather"), CALL)
    assert await _voice(client, "/ivr/twilio/voice", CALL, elsewhere) == 403  # replayed
    tampered = validator.compute_signature(local, {**CALL, "From": OTHER_PHONE})
    assert await _voice(client, "/ivr/twilio/voice", CALL, tampered) == 403
    good = validator.compute_signature(local, CALL)
    assert await _voice(client, "/ivr/twilio/voice", CALL, good) == 200
    sha256 = validator.compute_signature(local, CALL, "HMAC_SHA256")
    assert (
        await _voice(
            client,
            "/ivr/twilio/voice",
            CALL,
            sha256,
            **{"X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256"},
        )
        == 200
    )
    text = await metrics_text(client)
    assert (
        sample(text, "hotline_rejected_requests_total", dialect="twilio", reason="signature") == 4
    )


async def test_twilio_behind_proxy_uses_public_base_url(make_client: MakeClient) -> None:
    client = await make_client(
        security={"twilio_auth_token": TOKEN}, ivr={"public_base_url": "https://ivr.example.com"}
    )
    validator = RequestValidator(TOKEN)
    public = validator.compute_signature("https://ivr.example.com/ivr/twilio/voice?x=1", CALL)
    assert await _voice(client, "/ivr/twilio/voice?x=1", CALL, public) == 200
    local = validator.compute_signature(str(client.make_url("/ivr/twilio/voice?x=1")), CALL)
    assert await _voice(client, "/ivr/twilio/voice?x=1", CALL, local) == 403


async def test_twilio_forwarded_headers_only_from_trusted_proxy(make_client: MakeClient) -> None:
    validator = RequestValidator(TOKEN)
    signed = validator.compute_signature("https://edge.example.com/ivr/twilio/voice", CALL)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "edge.example.com"}
    untrusted = await make_client(security={"twilio_auth_token": TOKEN})
    assert await _voice(untrusted, "/ivr/twilio/voice", CALL, signed, **forwarded) == 403
    trusted = await make_client(
        security={"twilio_auth_token": TOKEN, "trusted_proxies": ["127.0.0.1/32"]}
    )
    assert await _voice(trusted, "/ivr/twilio/voice", CALL, signed, **forwarded) == 200


async def test_no_twilio_token_means_no_signature_check(make_client: MakeClient) -> None:
    client = await make_client()
    assert await _voice(client, "/ivr/twilio/voice", CALL, None) == 200


async def test_subscriber_rate_limit_is_polite(make_client: MakeClient) -> None:
    client = await make_client(security={"subscriber_rate": "3/minute"})
    for i in range(3):
        response = await client.post(AT, data=at_form(f"rl-{i}"))
        assert (await response.text()).startswith("CON ")
    limited = await client.post(AT, data=at_form("rl-9"))
    assert limited.status == 200
    assert await limited.text() == "END 您查询过于频繁，请稍后再试。"
    other = await client.post(AT, data=at_form("rl-10", phone=OTHER_PHONE))
    assert (await other.text()).startswith("CON ")
    text = await metrics_text(client)
    assert sample(text, "hotline_rejected_requests_total", reason="subscriber_rate") == 1


async def test_gateway_rate_limit_is_polite(make_client: MakeClient) -> None:
    client = await make_client(security={"gateway_rate": "2/minute"})
    for i in range(2):
        assert (await (await client.post(AT, data=at_form(f"gw-{i}"))).text()).startswith("CON")
    busy = await client.post(AT, data=at_form("gw-3", phone=OTHER_PHONE))
    assert await busy.text() == "END 系统繁忙，请稍后再试。"
    text = await metrics_text(client)
    assert sample(text, "hotline_rejected_requests_total", reason="gateway_rate") == 1


async def test_body_and_field_limits(make_client: MakeClient) -> None:
    client = await make_client(max_body_bytes=1024, security={"max_field_chars": 64})
    huge = await client.post(AT, data={**at_form("big-1"), "pad": "x" * 4000})
    assert huge.status == 400
    assert await huge.text() == "body is larger than 1024 bytes"
    # The AT dialect bounds each of its fields itself (with its own reasons) …
    long_text = await client.post(AT, data=at_form("big-2", "1" * 500))
    assert long_text.status == 400
    assert "text is longer than 480" in await long_text.text()
    # … the guard bounds every field of a voice platform's request.
    long_field = await client.post("/ivr/twilio/voice", data={**CALL, "CallSid": "C" * 100})
    assert long_field.status == 400
    assert await long_field.text() == "CallSid is longer than 64 characters"
    text = await metrics_text(client)
    assert sample(text, "hotline_rejected_requests_total", reason="body_size") == 1
    assert sample(text, "hotline_rejected_requests_total", reason="field_size") == 1


async def test_unmapped_errors_answer_politely_and_never_leak(
    aiohttp_client: Any, settings_factory: Any, redis_url: str
) -> None:
    app = create_app(settings_factory(redis_url=redis_url))

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail +8613800138000")

    app.router.add_post(f"{AT}/boom", boom)
    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    gateway = await client.post(f"{AT}/boom", data=at_form("boom-1"))
    assert gateway.status == 200
    assert await gateway.text() == "END 系统繁忙，请稍后再试。"
    other = await client.get("/boom")
    assert other.status == 500
    body = await other.text()
    assert body == "Internal error."
    assert other.headers["X-Request-Id"]
    text = await metrics_text(client)
    assert sample(text, "hotline_errors_total", kind="RuntimeError") == 2


async def test_too_many_fields(make_client: MakeClient) -> None:
    client = await make_client()
    fields = "&".join(f"f{i}=1" for i in range(300))
    response = await client.post(
        AT, data=fields.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 400
    assert await response.text() == "more than 256 form fields"


async def _limited(response: Any) -> bool:
    assert response.status == 200
    return "您查询过于频繁" in await response.text()


async def test_the_subscriber_limited_is_the_one_the_channel_serves(
    make_client: MakeClient,
) -> None:
    """A repeated subscriber field or a multipart body cannot move a caller to a fresh
    limit: the guard counts whom the channel will serve (the last `callerNumber`)."""
    client = await make_client(security={"subscriber_rate": "1/minute"})
    form = "application/x-www-form-urlencoded"

    def call(session: str, *callers: str) -> bytes:
        pairs = [("isActive", "1"), ("sessionId", session)]
        pairs += [("callerNumber", caller) for caller in callers]
        return "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in pairs).encode()

    first = await client.post(
        "/ivr/africastalking",
        data=call("ATVid_r1", OTHER_PHONE, PHONE),
        headers={"Content-Type": form},
    )
    assert not await _limited(first)
    again = await client.post(
        "/ivr/africastalking",
        data=call("ATVid_r2", "+8613800138001", PHONE),
        headers={"Content-Type": form},
    )
    assert await _limited(again)
    multipart = FormData(
        {"isActive": "1", "sessionId": "ATVid_r3", "callerNumber": PHONE},
        default_to_multipart=True,
    )
    assert await _limited(await client.post("/ivr/africastalking", data=multipart))
    text = await metrics_text(client)
    assert sample(text, "hotline_rejected_requests_total", reason="subscriber_rate") == 2


async def test_a_form_the_channel_refuses_keeps_its_reason(make_client: MakeClient) -> None:
    """The guard reads the form with the channel's reader; the refusal is the channel's."""
    client = await make_client()
    repeated = b"sessionId=s1&sessionId=s2&serviceCode=*100%23&phoneNumber=1234&text="
    response = await client.post(
        AT, data=repeated, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 400
    assert await response.text() == "form field 'sessionId' appears more than once"
    stripped = b"  " + "&".join(f"{k}={v}" for k, v in at_form("ws-1").items()).encode()
    response = await client.post(
        AT,
        data=stripped.replace(b"+", b"%2B") + b"\n",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (await response.text()).startswith("CON ")
