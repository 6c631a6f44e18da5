"""Fixtures: the billing simulator on a loopback port, settings pointing at it, a fake clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from hotline.balance.sim import create_sim_app
from hotline.balance.sim.app import stats_key
from hotline.base.config import BalanceSettings, Settings, load_settings
from hotline.base.privacy import Pseudonymizer

KEY_ID = "test-client"
SECRET = "test-secret-0123456789"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sim:
    """The running simulator plus its admin API."""

    server: TestServer
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    async def fault(self, **doc: Any) -> dict[str, Any]:
        async with self.session.post(self.server.make_url("/_sim/faults"), json=doc) as resp:
            assert resp.status == 201, await resp.text()
            result: dict[str, Any] = await resp.json()
            return result

    async def clear_faults(self) -> None:
        async with self.session.delete(self.server.make_url("/_sim/faults")) as resp:
            assert resp.status == 200

    async def put(self, msisdn: str, doc: dict[str, Any]) -> None:
        async with self.session.put(
            self.server.make_url(f"/_sim/subscribers/{msisdn}"), json=doc
        ) as resp:
            assert resp.status == 200, await resp.text()

    async def put_card(self, card: str, doc: dict[str, Any]) -> None:
        async with self.session.put(self.server.make_url(f"/_sim/cards/{card}"), json=doc) as resp:
            assert resp.status == 200, await resp.text()

    async def stats(self) -> dict[str, Any]:
        async with self.session.get(self.server.make_url("/_sim/stats")) as resp:
            result: dict[str, Any] = await resp.json()
            return result

    async def calls(self, msisdn: str) -> int:
        return int((await self.stats())["calls"].get(stats_key(SECRET, msisdn), 0))


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    app = create_sim_app(key_id=KEY_ID, secret=SECRET)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    async with aiohttp.ClientSession() as session:
        yield Sim(server, session)
    await server.close()


@pytest.fixture
def pseudonym() -> Pseudonymizer:
    return Pseudonymizer("test-pseudonym-secret")


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for the `http` provider at `url` with small, test-sized budgets."""

    def make(url: str | None = None, **balance: Any) -> Settings:
        values: dict[str, Any] = {
            "provider": "http" if url else "ledger",
            "url": url,
            "key_id": KEY_ID,
            "secret": SecretStr(SECRET),
            "ledger_path": tmp_path / "ledger.sqlite3",
            "deadline": 1.0,
            "connect_timeout": 0.5,
            "read_timeout": 0.5,
            "retry_backoff": 0.01,
            "retry_min_budget": 0.05,
            "breaker_reset": 10.0,
        }
        values.update(balance)
        return load_settings(None, balance=BalanceSettings(**values))

    return make


@pytest.fixture
def utc_now() -> Callable[[], dt.datetime]:
    return lambda: dt.datetime.now(dt.UTC)
