"""What an operator relies on: limits that hold across workers (two apps, one Redis),
per-client metrics without numbers, and a durable audit of every access."""

from __future__ import annotations

import contextlib
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from api.pipeline import API
from hotline.base.config import Settings
from hotline.base.privacy import Pseudonymizer
from hotline.web.app import create_app
from tests.api.conftest import PHONE, Api, api_values, running


async def test_client_limit_holds_across_workers(tmp_path: Path, redis_url: str) -> None:
    limits = {"client_rate": "6/minute", "subscriber_rate": "1000/minute"}
    async with running(tmp_path, redis_url, api=limits) as first:
        who = first.register("app", "balance:read")
        token = await first.client_token(who)  # 1 (counted against the client id)
        subscriber = await first.sign_in(token)  # 2, 3
        # a second worker: its own app and process state, the same Redis and store
        second: TestClient = TestClient(
            TestServer(create_app(Settings(**api_values(tmp_path, redis_url, api=limits))))
        )  # type: ignore[type-arg]
        await second.start_server()
        try:
            auth = {"Authorization": f"Bearer {subscriber}"}
            statuses = []
            for client in (first.client, second, first.client, second):
                statuses.append((await client.get("/api/v1/me/balance", headers=auth)).status)
            assert statuses == [200, 200, 200, 429]
            r = await second.get("/api/v1/me/balance", headers=auth)
            assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        finally:
            await second.close()


async def test_subscriber_limit(tmp_path: Path, redis_url: str) -> None:
    limits = {"subscriber_rate": "2/minute"}
    async with running(tmp_path, redis_url, api=limits) as api:
        subscriber = await api.sign_in(await api.client_token(api.register("app", "balance:read")))
        auth = {"Authorization": f"Bearer {subscriber}"}
        got = [(await api.client.get("/api/v1/me/balance", headers=auth)).status for _ in range(3)]
        assert got == [200, 200, 429]
        body = await (await api.client.get("/api/v1/me/balance", headers=auth)).json()
        assert body["code"] == "rate_limited" and body["detail"] == "over the subscriber rate"


async def test_metrics_per_client_and_audit(api: Api) -> None:
    subscriber = await api.sign_in(await api.client_token(api.register("app", "balance:read")))
    auth = {"Authorization": f"Bearer {subscriber}"}
    assert (await api.client.get("/api/v1/me/balance", headers=auth)).status == 200
    assert (await api.client.get("/api/v1/me/plan", headers=auth)).status == 403
    text = await (await api.client.get("/metrics")).text()
    assert "13800138000" not in text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ok = (
        "hotline_api_requests_total",
        (("client", "app"), ("endpoint", "getBalance"), ("outcome", "ok")),
    )
    refused = (
        "hotline_api_requests_total",
        (("client", "app"), ("endpoint", "getPlan"), ("outcome", "insufficient_scope")),
    )
    assert samples[ok] == 1 and samples[refused] == 1
    assert samples[("hotline_api_request_duration_seconds_count", (("client", "app"),))] >= 4

    ctx = api.client.app[API]  # type: ignore[index]
    await ctx.audit.flush()
    rows = await ctx.store.audit()
    pseudonym = Pseudonymizer("api-test-secret")(PHONE)
    seen = [(r.endpoint, r.outcome, r.status) for r in rows]
    assert seen == [
        ("clientToken", "ok", 200),
        ("sendCode", "ok", 202),
        ("subscriberToken", "ok", 200),
        ("getBalance", "ok", 200),
        ("getPlan", "insufficient_scope", 403),
    ]
    assert {r.subscriber for r in rows[1:]} == {pseudonym}
    assert all(r.client.startswith("cl_") for r in rows)
    raw = api.settings.api.db_path.read_bytes()
    with contextlib.suppress(FileNotFoundError):
        raw += api.settings.api.db_path.with_name("api.sqlite3-wal").read_bytes()
    assert b"13800138000" not in raw
