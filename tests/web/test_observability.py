"""/metrics series move with traffic, /healthz and /readyz, readiness with Redis stopping."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from hotline.web.app import create_app
from tests.conftest import RedisServer, free_port
from tests.web.conftest import AT, PHONE, at_form, sample


async def _metrics(client: Any) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return str(await response.text())


async def test_metrics_parse_and_move(
    aiohttp_client: Any, settings_factory: Any, redis_url: str
) -> None:
    client = await aiohttp_client(create_app(settings_factory(redis_url=redis_url)))
    before = await _metrics(client)
    families = {f.name for f in text_string_to_metric_families(before)}
    for name in (
        "hotline_requests",
        "hotline_request_duration_seconds",
        "hotline_sessions_started",
        "hotline_sessions_ended",
        "hotline_sessions_abandoned",
        "hotline_invalid_inputs",
        "hotline_rejected_requests",
        "hotline_errors",
        "hotline_gateway_session_outcomes",
        "hotline_flow_reloads",
        "hotline_tts_renders",
        "hotline_tts_cache_lookups",
    ):
        assert name in families, name
    ussd = {"channel": "ussd", "dialect": "africastalking"}
    assert sample(before, "hotline_requests_total", **ussd, outcome="continue") == 0

    # A complete session: dial, an invalid choice, then 1 (balance) which ends it.
    for text in ("", "9", "9*1"):
        response = await client.post(AT, data=at_form("m-1", text))
        assert response.status == 200
    # A second session the subscriber walks away from; the gateway reports it.
    await client.post(AT, data=at_form("m-2", ""))
    events = await client.post(
        f"{AT}/events",
        data={
            "sessionId": "m-2",
            "status": "Incomplete",
            "hopsCount": "1",
            "phoneNumber": PHONE,
            "input": "",
            "lastAppResponse": "CON ...",
            "date": "2026-11-24 01:00:00",
        },
    )
    assert events.status == 200
    done = await client.post(
        f"{AT}/events",
        data={"sessionId": "m-1", "status": "Success", "hopsCount": "3", "phoneNumber": PHONE},
    )
    assert done.status == 200
    bad = await client.post(f"{AT}/events", data={"sessionId": "m-1", "status": "Maybe"})
    assert bad.status == 400

    after = await _metrics(client)
    assert sample(after, "hotline_requests_total", **ussd, outcome="continue") == 3
    assert sample(after, "hotline_requests_total", **ussd, outcome="end") == 1
    assert sample(after, "hotline_request_duration_seconds_count", **ussd) == 7
    assert sample(after, "hotline_sessions_started_total", channel="ussd", flow="balance") == 2
    assert (
        sample(
            after,
            "hotline_sessions_ended_total",
            channel="ussd",
            flow="balance",
            state="show_balance",
        )
        == 1
    )
    assert (
        sample(after, "hotline_invalid_inputs_total", channel="ussd", flow="balance", state="main")
        == 1
    )
    assert (
        sample(
            after, "hotline_sessions_abandoned_total", channel="ussd", flow="balance", state="main"
        )
        == 1
    )
    assert (
        sample(after, "hotline_gateway_session_outcomes_total", flow="balance", status="Incomplete")
        == 1
    )
    assert (
        sample(after, "hotline_gateway_session_outcomes_total", flow="balance", status="Success")
        == 1
    )
    assert sample(after, "hotline_gateway_session_hops_sum", flow="balance", status="Success") == 3
    # The balance stack registers its upstream series on the same registry.
    assert sample(after, "hotline_balance_upstream_seconds_count", provider="ledger") >= 1
    # Nothing personal in any label.
    assert "13800138000" not in after
    assert "m-1" not in after


async def test_malformed_session_notifications_get_400_with_a_reason(
    aiohttp_client: Any, settings_factory: Any
) -> None:
    client = await aiohttp_client(create_app(settings_factory()))
    form = "application/x-www-form-urlencoded"
    cases = {
        "sessionId=m-1&status=Success&hopsCount=%C2%B2": "hopsCount",  # superscript two
        "sessionId=m-1&status=Success&hopsCount=" + "1" * 5000: "hopsCount",
        "sessionId=m-1&status=Success&phoneNumber=%FF": "UTF-8",
        "sessionId=m-1&sessionId=m-2&status=Success": "more than once",
    }
    for body, reason in cases.items():
        response = await client.post(
            f"{AT}/events", data=body.encode(), headers={"Content-Type": form}
        )
        assert response.status == 400, body
        assert reason in await response.text(), body
    bogus = await client.post(
        f"{AT}/events",
        data=b"sessionId=m-1&status=Success",
        headers={"Content-Type": form + "; charset=bogus"},
    )
    assert bogus.status == 200  # the form is read as UTF-8 whatever the charset says
    after = await _metrics(client)
    errors = [
        s.value
        for family in text_string_to_metric_families(after)
        for s in family.samples
        if s.name == "hotline_errors_total"
    ]
    assert sum(errors) == 0  # refused as malformed, not caught as a crash


async def test_healthz_and_readyz(
    aiohttp_client: Any, settings_factory: Any, redis_url: str
) -> None:
    client = await aiohttp_client(create_app(settings_factory(redis_url=redis_url)))
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"balance": "ok", "flows": "ok", "sessions": "ok"}


async def test_readiness_follows_redis(
    aiohttp_client: Any, settings_factory: Any, stoppable_redis: RedisServer
) -> None:
    client = await aiohttp_client(create_app(settings_factory(redis_url=stoppable_redis.url)))
    assert (await client.get("/readyz")).status == 200
    stoppable_redis.stop()
    down = await client.get("/readyz")
    assert down.status == 503
    body = await down.json()
    assert body["status"] == "not ready"
    assert body["checks"]["sessions"] == "failing"
    assert body["checks"]["flows"] == "ok"
    assert (await client.get("/healthz")).status == 200  # alive, just not ready
    # The subscriber still gets a sentence while Redis is away.
    reply = await client.post(AT, data=at_form("r-1"))
    assert reply.status == 200
    assert (await reply.text()).startswith("END ")
    assert sample(await _metrics(client), "hotline_ready", check="sessions") == 0
    stoppable_redis.start()
    back = await client.get("/readyz")
    assert back.status == 200
    assert (await back.json())["checks"]["sessions"] == "ok"
    assert (await (await client.post(AT, data=at_form("r-2"))).text()).startswith("CON ")


async def test_readiness_fails_while_the_balance_breaker_is_open(
    aiohttp_client: Any, settings_factory: Any, redis_url: str
) -> None:
    closed_port = free_port()  # nothing listens: every lookup fails fast
    settings = settings_factory(
        redis_url=redis_url,
        balance={
            "provider": "http",
            "url": f"http://127.0.0.1:{closed_port}",
            "key_id": "k",
            "secret": "s",
            "breaker_failures": 2,
            "breaker_reset": 60,
            "subscriber_rate": "1000/minute",
        },
    )
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/readyz")).status == 200
    for i in range(3):
        await client.post(AT, data=at_form(f"b-{i}"))
        reply = await client.post(AT, data=at_form(f"b-{i}", "1"))
        assert (await reply.text()).startswith("END ")  # a polite sentence, never a number
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"]["balance"] == "failing"


async def test_speech_metrics_move(
    aiohttp_client: Any, settings_factory: Any, redis_url: str, tmp_path: Path
) -> None:
    app = create_app(
        settings_factory(
            redis_url=redis_url, ivr={"audio_dir": tmp_path / "audio", "warm_prompts": False}
        )
    )
    client = await aiohttp_client(app)
    call = {"CallSid": "CA-m1", "From": PHONE, "To": "+8610086", "CallStatus": "ringing"}
    assert (await client.post("/ivr/twilio/voice", data=call)).status == 200
    first = await _metrics(client)
    rendered = sample(first, "hotline_tts_renders_total", outcome="ok")
    assert rendered >= 1
    assert sample(first, "hotline_tts_cache_lookups_total", result="miss") >= rendered
    assert (await client.post("/ivr/twilio/voice", data={**call, "CallSid": "CA-m2"})).status == 200
    second = await _metrics(client)
    assert sample(second, "hotline_tts_renders_total", outcome="ok") == rendered  # all cached
    assert sample(second, "hotline_tts_cache_lookups_total", result="hit") >= rendered
    assert (
        sample(
            second, "hotline_requests_total", channel="ivr", dialect="twilio", outcome="continue"
        )
        == 2
    )


async def test_requests_in_flight(
    aiohttp_client: Any, settings_factory: Any, redis_url: str
) -> None:
    """The gauge counts requests being handled, the scrape itself included."""
    app = create_app(settings_factory(redis_url=redis_url))
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="done")

    app.router.add_get("/slow", slow)
    client = await aiohttp_client(app)
    assert sample(await _metrics(client), "hotline_requests_in_flight") == 1
    pending = [asyncio.create_task(client.get("/slow")) for _ in range(2)]
    async with asyncio.timeout(5):
        while sample(await _metrics(client), "hotline_requests_in_flight") != 3:
            await asyncio.sleep(0.01)
    release.set()
    for response in await asyncio.gather(*pending):
        assert await response.text() == "done"
    assert sample(await _metrics(client), "hotline_requests_in_flight") == 1
