"""The application factory: synchronous wiring, resources in cleanup contexts.

`create_app(settings)` is what `hotline serve` runs and what tests hand to
`aiohttp_client`. Flows and prompt catalogs are loaded here, so a broken flow stops
startup with its `file:line`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from hotline.base.config import Settings
from hotline.base.privacy import Pseudonymizer
from hotline.flow.engine import Engine
from hotline.flow.registry import FlowRegistry
from hotline.flow.services import Services
from hotline.i18n.catalog import CatalogSet, load_catalogs
from hotline.store.sessions import MemorySessionStore, RedisSessionStore, SessionStore
from hotline.web import ops
from hotline.web.guards import Gateway
from hotline.web.keys import BALANCE, ENGINE, METRICS, PSEUDONYM, SESSIONS, SETTINGS

__all__ = ["CATALOGS", "FLOWS", "channel_prompt_keys", "create_app"]

log = logging.getLogger(__name__)

FLOWS = web.AppKey("FLOWS", FlowRegistry)
CATALOGS = web.AppKey("CATALOGS", CatalogSet)


def _open_store(settings: Settings) -> SessionStore:
    if settings.redis_url:
        return RedisSessionStore.from_url(settings.redis_url)
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


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[ENGINE] = Engine(
        settings=settings,
        registry=app[FLOWS],
        catalogs=app[CATALOGS],
        store=app[SESSIONS],
        pseudonym=app[PSEUDONYM],
        services=Services(balance=app.get(BALANCE)),
        session_ttls={"ussd": settings.ussd.session_ttl, "ivr": settings.ivr.session_ttl},
    )
    yield


def create_app(settings: Settings) -> web.Application:
    """Build the whole service for one worker process."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[PSEUDONYM] = Pseudonymizer(settings.pseudonym_secret.get_secret_value())
    app[FLOWS] = FlowRegistry.from_directory(settings.flows_dir)
    app[CATALOGS] = load_catalogs(
        settings.prompts_dir, settings.languages, settings.default_language
    )
    gateways = _gateways(settings)
    ops.install(app, gateways, flows_loaded=lambda: bool(app[FLOWS].flows()))
    app.cleanup_ctx.append(_sessions_ctx)
    app.cleanup_ctx.append(_balance_ctx)
    app.cleanup_ctx.append(_engine_ctx)
    _mount_channels(app)
    ops.mount_token_routes(app, gateways)
    return app


def _gateways(settings: Settings) -> list[Gateway]:
    """How each gateway's routes are guarded (hotline.web.guards); only the factory knows them."""
    from functools import partial

    import ivr.auth
    import ivr.polite
    import ivr.routes
    import ussd.form
    import ussd.polite
    from hotline.web.security import parse_networks

    security = settings.security
    # Africa's Talking's USSD and voice callbacks come from the same platform.
    at_allowed = parse_networks(security.at_allowed_cidrs)
    at_token = security.at_path_token.get_secret_value() if security.at_path_token else None
    twilio_token = security.twilio_auth_token
    return [
        Gateway(
            prefix="/ussd/africastalking",
            channel="ussd",
            dialect="africastalking",
            subscriber_field="phoneNumber",
            allowed=at_allowed,
            path_token=at_token,
            polite=ussd.polite.polite_reply,
            form=ussd.form.read_form,
        ),
        Gateway(
            prefix="/ivr/twilio",
            channel="ivr",
            dialect="twilio",
            subscriber_field="From",
            signature=(
                partial(ivr.auth.check_request, secret=twilio_token.get_secret_value())
                if twilio_token
                else None
            ),
            public_base_url=settings.ivr.public_base_url,
            polite=ivr.polite.polite_reply,
            max_field_chars=security.max_field_chars,
            form=ivr.routes.read_form,
        ),
        Gateway(
            prefix="/ivr/africastalking",
            channel="ivr",
            dialect="africastalking",
            subscriber_field="callerNumber",
            allowed=at_allowed,
            path_token=at_token,
            polite=ivr.polite.polite_reply_africastalking,
            max_field_chars=security.max_field_chars,
            form=ivr.routes.read_form,
        ),
    ]


def _mount_channels(app: web.Application) -> None:
    """Channels register their own routes; the core imports them only here."""
    import ivr.routes
    import ussd.events
    import ussd.routes

    ussd.routes.setup(app)
    ivr.routes.setup(app)
    if app[SETTINGS].simulator:
        import hotline.web.simulator

        hotline.web.simulator.setup(app)
    ussd.events.setup(app)


def channel_prompt_keys() -> tuple[str, ...]:
    """Catalog keys the mounted channels need in every language (for `flows check`)."""
    import ivr.render
    import ussd.render

    return (*ussd.render.NAV_KEYS, *ivr.render.VOICE_PROMPTS)
