"""One `database_url` for every durable store: the outbox, reminders, plans and the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select

from api.store import ApiStore
from hotline.base.config import load_settings
from hotline.plans.open import open_plan_store
from hotline.reminders.store import ReminderStore
from hotline.store.db import MIGRATIONS_TABLE
from hotline.store.outbox import Outbox
from tests.store.pg import postgres_url

STORE_TABLES = {
    "sms_outbox",
    "sms_outbox_parts",
    "reminder_subscriptions",
    "reminder_consent",
    "reminder_crossings",
    "plan_order",
    "plan_offer",
    "plan_product",
    "plan_password",
    "api_clients",
    "api_revocations",
    "api_audit",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hotline.sqlite3'}"
    else:
        yield from postgres_url()


def test_every_store_takes_the_shared_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "postgresql+psycopg://h@db.example/hotline")
    monkeypatch.setenv("HOTLINE_API__DB_URL", "sqlite:///var/api-own.sqlite3")
    settings = load_settings()
    assert settings.sms.outbox_url == "postgresql+psycopg://h@db.example/hotline"
    assert settings.reminders.database_url == "postgresql+psycopg://h@db.example/hotline"
    assert settings.plans.store_url == "postgresql+psycopg://h@db.example/hotline"
    # A section's own URL wins over the shared one.
    assert settings.api.db_url == "sqlite:///var/api-own.sqlite3"


def test_the_shared_url_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text(
        "database_url: postgresql+psycopg://h@db.example/hotline\n"
        "sms:\n  outbox_url: postgresql+psycopg://h@other.example/outbox\n"
        "plans:\n  seed_demo: false\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert settings.sms.outbox_url == "postgresql+psycopg://h@other.example/outbox"
    assert settings.plans.store_url == "postgresql+psycopg://h@db.example/hotline"
    assert settings.plans.seed_demo is False
    assert settings.reminders.database_url == "postgresql+psycopg://h@db.example/hotline"


def test_unset_keeps_each_embedded_file() -> None:
    settings = load_settings()
    assert settings.database_url is None
    assert settings.sms.outbox_url is None
    assert settings.reminders.database_url is None
    assert settings.plans.store_url is None
    assert settings.api.db_url is None


async def test_four_stores_live_in_one_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", database_url)
    settings = load_settings()
    outbox = Outbox(settings.sms.outbox_url, path=tmp_path / "unused-outbox.sqlite3")
    reminders = ReminderStore(
        settings.reminders.database_url, path=tmp_path / "unused-reminders.sqlite3"
    )
    api = ApiStore(settings.api.db_url, path=tmp_path / "unused-api.sqlite3")
    plans = open_plan_store(settings)
    try:
        message = await outbox.send("+8613800138000", "sms.balance", {}, "zh-CN")
        await reminders.subscribe("+8613800138000", 1000, "CNY", channel="ussd", language="zh-CN")
        api.add_client("c1", "portal", "s3cret", ["balance:read"])
        assert message > 0
        assert (await reminders.subscription("+8613800138000")) is not None
        assert [client.name for client in api.clients()] == ["portal"]
        assert plans.offers()
    finally:
        await outbox.close()
        await reminders.close()
        await api.close()
        plans.engine.dispose()

    assert not list(tmp_path.glob("unused-*"))  # nothing fell back to an embedded file
    engine = create_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) >= STORE_TABLES
        with engine.connect() as conn:
            applied = {row.id for row in conn.execute(select(MIGRATIONS_TABLE.c.id))}
    finally:
        engine.dispose()
    prefixes = {ident.split("-")[0] for ident in applied}
    assert {"outbox", "reminders", "plans", "api"} <= prefixes, applied
