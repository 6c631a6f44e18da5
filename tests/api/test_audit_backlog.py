"""The audit while its database is stopped: rows wait (bounded), then requests are refused
with 503 — nothing is served unaudited — and once the database is back every waiting row
is written, in order. Against a real PostgreSQL server of the test's own, really stopped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.pipeline import API
from tests.api.conftest import running
from tests.api.private_pg import PrivatePostgres, private_postgres

BACKLOG = 12


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    yield from private_postgres()


async def _until(check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


async def test_a_stopped_audit_database_fills_the_backlog_then_refuses(
    tmp_path: Path, redis_url: str, postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    extra = {"db_url": postgres.url, "audit_backlog": BACKLOG}
    async with running(tmp_path, redis_url, api=extra) as api:
        who = api.register("portal", "balance:read")
        subscriber = await api.sign_in(await api.client_token(who))
        headers = {"Authorization": f"Bearer {subscriber}", "X-Request-Id": "req-00000000"}
        ctx = api.client.app[API]  # type: ignore[index]
        await ctx.audit.flush()
        before = await ctx.store.audit()
        assert [r.endpoint for r in before] == ["clientToken", "sendCode", "subscriberToken"]

        postgres.stop()
        caplog.set_level(logging.WARNING, logger="api.store")
        # Served while the backlog has room; their rows wait for the database.
        for n in range(BACKLOG):
            headers["X-Request-Id"] = f"req-{n:08d}"
            r = await api.client.get("/api/v1/me/balance", headers=headers)
            assert r.status == 200, await r.text()
        await ctx.audit.flush()  # fails: the rows are kept
        assert ctx.audit.waiting == BACKLOG and ctx.audit.full
        assert "audit writes failing" in caplog.text

        # Full: refused with the error table's 503, not served and not audited.
        r = await api.client.get("/api/v1/me/balance", headers=headers)
        assert r.status == 503 and r.headers["Retry-After"] == "5"
        problem = await r.json()
        assert problem["code"] == "service_unavailable"
        assert problem["detail"] == "the audit store is down"
        assert ctx.audit.waiting == BACKLOG
        metrics = await (await api.client.get("/metrics")).text()
        assert "hotline_api_audit_refused_total 1.0" in metrics

        postgres.start()
        # The writer's own loop writes the backlog (the pool reconnects by itself).
        await _until(lambda: ctx.audit.waiting == 0)
        assert not ctx.audit.full
        assert "audit writes resumed" in caplog.text
        rows = await ctx.store.audit()
        written = rows[len(before) :]
        assert [r.endpoint for r in written] == ["getBalance"] * BACKLOG
        assert [r.request_id for r in written] == [f"req-{n:08d}" for n in range(BACKLOG)]
        assert {r.status for r in written} == {200}

        r = await api.client.get("/api/v1/me/balance", headers=headers)
        assert r.status == 200
