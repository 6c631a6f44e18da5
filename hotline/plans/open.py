"""The one place the configured plans service is built (`plans` settings)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry
from sqlalchemy.exc import IntegrityError, OperationalError

from hotline.base.config import PlansSettings, Settings
from hotline.base.errors import ConfigError
from hotline.base.privacy import Pseudonymizer
from hotline.flow.services import MessagesService
from hotline.plans.desk import Forgetful, PlansDesk
from hotline.plans.embedded import EmbeddedPlans, PlanStore
from hotline.plans.journal import Journal
from hotline.plans.provider import PlansProvider
from hotline.plans.tables import MIGRATIONS
from hotline.plans.wallet import LedgerWallet
from hotline.store.db import migrate, open_database, sqlite_url

__all__ = ["open_plan_store", "open_plans"]


def _url(config: PlansSettings) -> str:
    return config.store_url or sqlite_url(config.store_path)


def open_plan_store(settings: Settings) -> PlanStore:
    """The migrated store (demo catalog seeded when `plans.seed_demo`)."""
    config = settings.plans
    try:
        engine = open_database(_url(config))
        for attempt in range(3):
            try:
                migrate(engine, MIGRATIONS)
                break
            except (OperationalError, IntegrityError):
                # Two workers starting on one fresh SQLite file both create a table (pysqlite
                # issues DDL outside a transaction): the second try finds the work done.
                if attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))
    except Exception as exc:  # a bad URL or an unreachable database: one line
        raise ConfigError(
            f"config plans.store_url / store_path: cannot open the plans store: "
            f"{type(exc).__name__}"
        ) from exc
    store = PlanStore(engine)
    if config.seed_demo and config.provider == "embedded":
        store.seed_demo()
    return store


@asynccontextmanager
async def open_plans(
    settings: Settings,
    pseudonym: Pseudonymizer,
    registry: CollectorRegistry | None = None,
    *,
    messages: MessagesService | None = None,
    balance: Forgetful | None = None,
    reconcile: bool = True,
) -> AsyncIterator[PlansDesk]:
    """The desk over the configured provider, with its reconciler running (if asked)."""
    config = settings.plans
    store = await asyncio.to_thread(open_plan_store, settings)
    provider: PlansProvider
    if config.provider == "http":
        from hotline.plans.http import HttpPlans

        provider = HttpPlans(config, pseudonym, registry)
    else:
        wallet = await asyncio.to_thread(LedgerWallet, settings.balance.ledger_path)
        provider = EmbeddedPlans(store, wallet)
    desk = PlansDesk(
        provider,
        Journal(store.engine),
        config,
        secret=settings.pseudonym_secret.get_secret_value(),
        messages=messages,
        balance=balance,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(desk.run(stop)) if reconcile else None
    try:
        yield desk
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await desk.close()
        store.engine.dispose()
