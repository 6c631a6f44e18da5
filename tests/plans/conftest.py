"""Fixtures: the billing simulator (with its ordering endpoints) on a loopback port, the
plans store on SQLite or a throwaway PostgreSQL, the real outbox, settings for both
providers. Nothing is mocked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from hotline.balance.ledger import LedgerStore
from hotline.balance.sim import create_sim_app
from hotline.base.config import Settings
from hotline.base.privacy import Pseudonymizer
from hotline.plans.desk import PlansDesk
from hotline.plans.open import open_plans
from hotline.store.outbox import Outbox
from tests.store.pg import postgres_url

ROOT = Path(__file__).resolve().parents[2]
KEY_ID = "plans-test"
SECRET = "plans-test-secret-0123456789"
PSEUDONYM_SECRET = "plans-test-pseudonym"


@dataclass
class Sim:
    """The running simulator and its admin API."""

    server: TestServer
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.server.make_url("/")).rstrip("/")

    async def fault(self, **doc: Any) -> None:
        async with self.session.post(self.server.make_url("/_sim/order-faults"), json=doc) as r:
            assert r.status == 201, await r.text()

    async def clear_faults(self) -> None:
        async with self.session.delete(self.server.make_url("/_sim/order-faults")) as r:
            assert r.status == 200

    async def orders(self) -> dict[str, Any]:
        async with self.session.get(self.server.make_url("/_sim/orders")) as r:
            found: dict[str, Any] = await r.json()
            return found

    async def offering(self, offer_id: str, **doc: Any) -> None:
        async with self.session.put(
            self.server.make_url(f"/_sim/offerings/{offer_id}"), json=doc
        ) as r:
            assert r.status == 200, await r.text()

    async def put(self, msisdn: str, doc: dict[str, Any]) -> None:
        async with self.session.put(
            self.server.make_url(f"/_sim/subscribers/{msisdn}"), json=doc
        ) as r:
            assert r.status == 200, await r.text()

    async def main_minor(self, msisdn: str) -> int:
        """The balance the simulator holds, through its own balance dialect's data."""
        from hotline.balance.sim.app import SIM

        sub = self.server.app[SIM].subscribers[msisdn]
        return int(sub.main_minor or 0)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    app = create_sim_app(key_id=KEY_ID, secret=SECRET)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    async with aiohttp.ClientSession() as session:
        yield Sim(server, session)
    await server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The plans store: SQLite (the embedded default) and PostgreSQL (production)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'plans.sqlite3'}"
        return
    for url in postgres_url():
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sqlalchemy.text(
                    "DROP TABLE IF EXISTS plan_order, plan_offer, plan_product, plan_password"
                )
            )
            conn.execute(
                sqlalchemy.text(
                    "DELETE FROM hotline_migrations WHERE id LIKE 'plans-%'"
                    if sqlalchemy.inspect(conn).has_table("hotline_migrations")
                    else "SELECT 1"
                )
            )
        engine.dispose()
        yield url


def plan_settings(
    tmp_path: Path,
    *,
    store_url: str | None = None,
    sim_url: str | None = None,
    redis_url: str | None = None,
    top: dict[str, Any] | None = None,
    **plans: Any,
) -> Settings:
    """Settings for the embedded provider, or the http one at `sim_url`."""
    section: dict[str, Any] = {
        "store_url": store_url or f"sqlite:///{tmp_path / 'plans.sqlite3'}",
        "answer_window": 1.5,
        "poll_interval": 0.05,
        "deadline": 0.6,
        "read_timeout": 2.0,
        "subscriber_rate": "1000/minute",
        "retry_backoff": 0.01,
        "retry_min_budget": 0.05,
    }
    if sim_url is not None:
        section.update(provider="http", url=sim_url, key_id=KEY_ID, secret=SecretStr(SECRET))
    section.update(plans)
    return Settings(
        flows_dir=ROOT / "flows",
        prompts_dir=ROOT / "prompts",
        redis_url=redis_url,
        redis_timeout=2.0,  # as tests/ussd/test_http.py: room for a busy test host
        pseudonym_secret=SecretStr(PSEUDONYM_SECRET),
        balance={
            "ledger_path": tmp_path / "ledger.sqlite3",
            "fresh_ttl": 60,
            "subscriber_rate": "1000/minute",
        },
        sms={"outbox_path": tmp_path / "outbox.sqlite3"},
        plans=section,
        **(top or {}),
    )


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    yield Outbox(path=tmp_path / "outbox.sqlite3")


MakeDesk = Callable[..., Any]


@pytest.fixture
async def make_desk(tmp_path: Path, outbox: Outbox) -> AsyncIterator[MakeDesk]:
    """`await make_desk(settings)`: a desk (reconciler off: tests drive it) over the
    demo ledger; closed at the end."""
    stack: list[Any] = []

    async def make(settings: Settings) -> PlansDesk:
        LedgerStore(settings.balance.ledger_path, seed_demo=True).close()
        manager = open_plans(
            settings, Pseudonymizer(PSEUDONYM_SECRET), messages=outbox, reconcile=False
        )
        desk = await manager.__aenter__()
        stack.append(manager)
        return desk

    yield make
    for manager in reversed(stack):
        await manager.__aexit__(None, None, None)
    await outbox.close()


async def receipts(outbox: Outbox) -> list[dict[str, Any]]:
    """Every queued receipt."""
    return [row for row in await outbox.rows() if row["kind"] == "receipt"]
