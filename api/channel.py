"""The API channel as a plug-in (`hotline.channels` entry point `api`).

Mounts every `hotline.api` route under `/api/v1` through the one pipeline
(`api.pipeline`), the OpenAPI document (`/api/v1/openapi.json`), its readable page
(`/api/v1/docs`) and the H5 page (`/h5`), all served from this package (no CDN). It
guards itself (tokens, Redis limits), so it describes no gateway to the core's guard.
Its resources — the API store, the audit writer, the Redis link — are one cleanup
context set up after the core's (the engine's `Services` are the balance and messages
it calls).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from hotline.web.channels import ChannelPlugin

if TYPE_CHECKING:
    from aiohttp import web

    from api.state import ApiState
    from api.store import ApiStore
    from hotline.base.config import Settings
    from hotline.web.guards import Gateway

__all__ = ["PLUGIN", "setup"]

CHANNEL = "api"


def token_secret(settings: Settings) -> str:
    """The configured API token secret, or one derived from the pseudonym secret."""
    configured = settings.api.token_secret
    if configured is not None:
        return configured.get_secret_value()
    return "derived:" + settings.pseudonym_secret.get_secret_value()


async def _api_ctx(app: web.Application) -> AsyncIterator[None]:
    from zoneinfo import ZoneInfo

    import aiohttp

    from api.context import ApiContext, ApiMetrics
    from api.identity import open_exchanges
    from api.pipeline import API
    from api.state import ApiState, Window
    from api.store import ApiStore, AuditWriter
    from api.tokens import Tokens, derive_secret
    from hotline.store.redislink import RedisLink, link_address
    from hotline.store.redisurl import open_redis
    from hotline.web.keys import ENGINE, METRICS, PSEUDONYM, SETTINGS

    settings = app[SETTINGS]
    engine = app[ENGINE]
    secret = token_secret(settings)
    store = ApiStore(settings.api.db_url, path=settings.api.db_path)
    redis = open_redis(settings.redis_url) if settings.redis_url else None
    link = None
    if settings.redis_url and (address := link_address(settings.redis_url)) is not None:
        wait = settings.redis_timeout  # as the session store: 0.5 s unless configured
        link = RedisLink(address, timeout=wait, connect_timeout=wait)
    state = ApiState(redis, settings.env, derive_secret(secret, "otp"), link) if redis else None
    audit = AuditWriter(store, backlog=settings.api.audit_backlog)
    session = aiohttp.ClientSession() if settings.api.identity else None
    app[API] = ApiContext(
        settings=settings,
        tokens=Tokens(secret),
        state=state,
        store=store,
        audit=audit,
        metrics=ApiMetrics(app[METRICS].registry),
        catalogs=engine.catalogs,
        services=engine.services,
        pseudonym=app[PSEUDONYM],
        client_window=Window.parse(settings.api.client_rate),
        subscriber_window=Window.parse(settings.api.subscriber_rate),
        h5_window=Window.parse(settings.api.h5_rate),
        zone=ZoneInfo(settings.timezone),
        exchanges=open_exchanges(settings.api.identity, session) if session else {},
    )
    if state is not None:
        await _reload_revocations(store, state, settings)
    audit.start()
    try:
        yield
    finally:
        await audit.stop()
        if session is not None:
            await session.close()
        await store.close()
        if link is not None:
            await link.close()
        if redis is not None:
            await redis.aclose()


async def _reload_revocations(store: ApiStore, state: ApiState, settings: Settings) -> None:
    """Redis may have restarted empty: every revocation still in force is durable in the
    API store, so put it back (an unexpired token of a revoked client stays refused)."""
    now = time.time()
    longest = max(settings.api.client_token_ttl, settings.api.subscriber_token_ttl)
    tokens = await asyncio.to_thread(store.live_revocations, now)
    clients = await asyncio.to_thread(store.revoked_clients_since, now - longest)
    for jti, expires_at in tokens:
        await state.revoke_token(jti, expires_at)
    for client in clients:
        await state.revoke_client(client, longest)


def setup(app: web.Application) -> None:
    from api import pages
    from api.pipeline import add_problem_routes, endpoint
    from api.routing import installed_routes

    for route in installed_routes():
        app.router.add_route(route.method, route.url, endpoint(route), name=f"api-{route.name}")
    pages.setup(app, installed_routes())
    add_problem_routes(app.router)
    app.cleanup_ctx.append(_api_ctx)


def gateways(settings: Settings) -> Sequence[Gateway]:
    """None: the API authenticates and limits each call itself (`api.pipeline`)."""
    return ()


PLUGIN = ChannelPlugin(name=CHANNEL, setup=setup, gateways=gateways, prompt_keys=("otp.code",))
