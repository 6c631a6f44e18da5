"""The application factory: synchronous wiring, resources in cleanup contexts.

`create_app(settings)` is what `hotline serve` runs and what tests hand to
`aiohttp_client`. Flows and prompt catalogs are loaded here, so a broken flow stops
startup with its `file:line`. The app factory knows no channel: the plug-ins it mounts
come from `hotline.web.channels`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from hotline.base.config import Settings
from hotline.base.privacy import Pseudonymizer
from hotline.flow.engine import Engine
from hotline.flow.registry import FlowRegistry
from hotline.flow.services import BalanceService, Services
from hotline.i18n.catalog import CatalogSet, load_catalogs
from hotline.reminders import wiring as reminders_wiring
from hotline.reminders.service import ObservedBalance
from hotline.store.sessions import MemorySessionStore, RedisSessionStore, SessionStore
from hotline.web import channels, ops
from hotline.web.keys import (
    BALANCE,
    ENDPOINTS,
    ENGINE,
    MESSAGES,
    METRICS,
    PLANS,
    PSEUDONYM,
    SESSIONS,
    SETTINGS,
)

__all__ = ["CATALOGS", "FLOWS", "create_app"]

log = logging.getLogger(__name__)

FLOWS = web.AppKey("FLOWS", FlowRegistry)
CATALOGS = web.AppKey("CATALOGS", CatalogSet)


def _open_store(settings: Settings) -> SessionStore:
    if settings.redis_url:
        return RedisSessionStore.from_url(settings.redis_url, settings.redis_timeout)
    log.warning("no redis_url configured: sessions are in-process (single worker only)")
    return MemorySessionStore()


async def _sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    store = _open_store(app[SETTINGS])
    app[SESSIONS] = store
    yield
    await store.close()


async def _balance_ctx(app: web.Application) -> AsyncIterator[None]:
    from hotline.balance.provider import open_provider

    async with open_provider(app[SETTINGS], app[PSEUDONYM], app[METRICS].registry) as provider:
        app[BALANCE] = provider
        yield


async def _messages_ctx(app: web.Application) -> AsyncIterator[None]:
    from hotline.store.outbox import Outbox

    sms = app[SETTINGS].sms
    outbox = Outbox(
        sms.outbox_url,
        path=sms.outbox_path,
        max_attempts=sms.max_attempts,
        retry_base=sms.retry_base,
        retry_max=sms.retry_max,
    )
    app[MESSAGES] = outbox
    yield
    await outbox.close()


async def _endpoints_ctx(app: web.Application) -> AsyncIterator[None]:
    from hotline.endpoints import open_endpoints

    async with open_endpoints(app[SETTINGS], app[PSEUDONYM], app[METRICS].registry) as found:
        app[ENDPOINTS] = found
        yield


async def _plans_ctx(app: web.Application) -> AsyncIterator[None]:
    from hotline.plans.open import open_plans

    async with open_plans(
        app[SETTINGS],
        app[PSEUDONYM],
        app[METRICS].registry,
        messages=app.get(MESSAGES),
        balance=app.get(BALANCE),
    ) as desk:
        app[PLANS] = desk
        yield


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    reminders = app.get(reminders_wiring.REMINDERS)
    balance: BalanceService | None = app.get(BALANCE)
    if reminders is not None and balance is not None:
        balance = ObservedBalance(balance, reminders)  # crossings seen on every lookup
    app[ENGINE] = Engine(
        settings=settings,
        registry=app[FLOWS],
        catalogs=app[CATALOGS],
        store=app[SESSIONS],
        pseudonym=app[PSEUDONYM],
        services=Services(
            balance=balance,
            agent_number=settings.ivr.agent_number,
            messages=app.get(MESSAGES),
            http=app.get(ENDPOINTS),
            reminders=reminders,
            plans=app.get(PLANS),
        ),
        session_ttls={
            "ussd": settings.ussd.session_ttl,
            "ivr": settings.ivr.session_ttl,
            "sms": settings.sms.session_ttl,
        },
        resume_windows={"ussd": settings.ussd.resume_window},
    )
    yield


def create_app(settings: Settings) -> web.Application:
    """Build the whole service for one worker process.

    The channels are the plug-ins `settings.channels` selects (`hotline.web.channels`);
    each sets itself up after the core's resources, and its gateways guard its routes.
    """
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[PSEUDONYM] = Pseudonymizer(settings.pseudonym_secret.get_secret_value())
    app[FLOWS] = FlowRegistry.from_directory(settings.flows_dir)
    app[CATALOGS] = load_catalogs(
        settings.prompts_dir, settings.languages, settings.default_language
    )
    plugins = channels.selected(settings)  # after the flows: a broken one fails fast
    gateways = channels.gateways(plugins, settings)
    ops.install(app, gateways, flows_loaded=lambda: bool(app[FLOWS].flows()))
    app.cleanup_ctx.append(_sessions_ctx)
    app.cleanup_ctx.append(_balance_ctx)
    app.cleanup_ctx.append(_messages_ctx)
    app.cleanup_ctx.append(_endpoints_ctx)
    reminders_wiring.setup(app)  # after the outbox, before the engine that uses it
    app.cleanup_ctx.append(_plans_ctx)
    app.cleanup_ctx.append(_engine_ctx)
    channels.mount(app, plugins)
    if settings.simulator:
        from hotline.web import simulator

        simulator.setup(app)
    if settings.analytics.enabled:
        from hotline.analytics import web as analytics

        analytics.setup(app)
    ops.mount_token_routes(app, gateways)
    return app
