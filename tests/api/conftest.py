"""API test helpers: a real app (aiohttp test server) on real Redis, the real SQLite
ledger, API store and SMS outbox; clients registered through the real command line."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from hotline.base.config import Settings
from hotline.cli import main
from hotline.store.db import open_database
from hotline.store.outbox import outbox_table
from hotline.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+8613800138000"  # demo subscriber: 12.50元, 3 GB, 200 min, 100 SMS
OTHER = "+8613800138002"  # owes 3.20元, 30 min of voice
Client = TestClient[web.Request, web.Application]


def api_values(tmp_path: Path, redis_url: str | None, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "flows_dir": str(ROOT / "flows"),
        "prompts_dir": str(ROOT / "prompts"),
        "redis_url": redis_url,
        "redis_timeout": 2.0,  # as tests/ussd/test_http.py: room for a busy test host
        "pseudonym_secret": "api-test-secret",
        "balance": {
            "ledger_path": str(tmp_path / "ledger.sqlite3"),
            "fresh_ttl": 30,
            "subscriber_rate": "1000/minute",
        },
        "sms": {"outbox_path": str(tmp_path / "outbox.sqlite3")},
        "api": {"db_path": str(tmp_path / "api.sqlite3")},
        # Every store in the test's directory: nothing shared through ./var between tests.
        "plans": {"store_path": str(tmp_path / "plans.sqlite3")},
        "reminders": {"database_path": str(tmp_path / "reminders.sqlite3")},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return values


def cli(config: Path, *argv: str) -> tuple[int, str, str]:
    """Run `hotline …` in this process; (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    # In a thread of its own, as in a shell: the command runs its own event loop.
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        ThreadPoolExecutor(1) as thread,
    ):
        status = thread.submit(main, [*argv, "--config", str(config)]).result()
    return status, out.getvalue(), err.getvalue()


@dataclass
class Registered:
    client_id: str
    secret: str


@dataclass
class Api:
    """One running app and what a test needs around it."""

    client: Client
    settings: Settings
    config: Path

    def register(self, name: str, scopes: str) -> Registered:
        status, out, err = cli(self.config, "api", "clients", "add", name, "--scopes", scopes)
        assert status == 0, err
        ident = re.search(r"client_id:\s+(\S+)", out)
        secret = re.search(r"client_secret:\s+(\S+)", out)
        assert ident and secret, out
        return Registered(ident.group(1), secret.group(1))

    async def client_token(self, who: Registered) -> str:
        r = await self.client.post(
            "/api/v1/auth/client-token",
            json={
                "grant_type": "client_credentials",
                "client_id": who.client_id,
                "client_secret": who.secret,
            },
        )
        assert r.status == 200, await r.text()
        token: str = (await r.json())["access_token"]
        return token

    def outbox(self) -> list[dict[str, Any]]:
        engine = open_database(f"sqlite:///{self.settings.sms.outbox_path}")
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(outbox_table).order_by(outbox_table.c.id)).mappings()
                return [dict(r) for r in rows]
        finally:
            engine.dispose()

    def last_code(self, phone: str = PHONE) -> str:
        rows = [r for r in self.outbox() if r["kind"] == "otp" and r["subscriber"] == phone]
        assert rows, "no OTP SMS in the outbox"
        code: str = json.loads(rows[-1]["vals"])["code"]["v"]
        return code

    async def sign_in(self, client_token: str, phone: str = PHONE) -> str:
        auth = {"Authorization": f"Bearer {client_token}"}
        r = await self.client.post("/api/v1/auth/otp", json={"phone": phone}, headers=auth)
        assert r.status == 202, await r.text()
        r = await self.client.post(
            "/api/v1/auth/token",
            json={"phone": phone, "code": self.last_code(phone)},
            headers=auth,
        )
        assert r.status == 200, await r.text()
        token: str = (await r.json())["access_token"]
        return token


@contextlib.asynccontextmanager
async def running(tmp_path: Path, redis_url: str | None, **extra: Any) -> AsyncIterator[Api]:
    values = api_values(tmp_path, redis_url, **extra)
    config = tmp_path / "hotline.yaml"
    config.write_text(yaml.safe_dump(values), encoding="utf-8")
    settings = Settings(**values)
    client: Client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        yield Api(client, settings, config)
    finally:
        await client.close()


@pytest.fixture
async def api(tmp_path: Path, redis_url: str) -> AsyncIterator[Api]:
    async with running(tmp_path, redis_url) as found:
        yield found
