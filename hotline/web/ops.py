"""Operations wiring for one app: metrics, readiness, guards, health and admin routes.

`install(app, gateways)` is called by the app factory with the `Gateway` list the
mounted channel plug-ins describe (`hotline.web.channels`). One middleware of ours: `observe`
(request id, the gateway guard, access line, metrics, last-resort errors), outermost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from hotline.base.metrics import Metrics
from hotline.web import admin, health
from hotline.web.guards import Gateway, GatewayGuard, add_token_routes
from hotline.web.keys import METRICS, PSEUDONYM, RATE_LIMITER, READINESS, SESSIONS, SETTINGS
from hotline.web.observe import observe
from hotline.web.ratelimit import RateLimiter
from hotline.web.security import parse_networks

__all__ = ["BREAKER_OPEN", "install", "mount_token_routes"]

BREAKER_OPEN = 1.0  # hotline_balance_breaker_state: 0 closed, 1 open, 2 half-open


async def _limiter_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[RATE_LIMITER].close()


def _readiness(app: web.Application, flows_loaded: Callable[[], bool]) -> None:
    checks = app[READINESS]

    async def sessions() -> bool:
        return await app[SESSIONS].ping()

    async def flows() -> bool:
        return flows_loaded()

    async def balance() -> bool:
        # Read the breaker gauge the balance stack keeps on our registry: no coupling
        # to its layers, and "half-open" (a probe is allowed) counts as ready.
        registry = app[METRICS].registry
        for family in registry.collect():
            if family.name == "hotline_balance_breaker_state":
                return all(sample.value != BREAKER_OPEN for sample in family.samples)
        return True

    checks.update({"sessions": sessions, "flows": flows, "balance": balance})


def install(
    app: web.Application, gateways: Sequence[Gateway], flows_loaded: Callable[[], bool]
) -> None:
    """Everything ops needs on an app built by `create_app`; call before routes freeze."""
    settings = app[SETTINGS]
    security = settings.security
    metrics = Metrics()
    app[METRICS] = metrics
    app[READINESS] = {}
    app[RATE_LIMITER] = RateLimiter(security.subscriber_rate, security.gateway_rate)
    app.cleanup_ctx.append(_limiter_ctx)
    _readiness(app, flows_loaded)
    guard = GatewayGuard(
        trusted_proxies=parse_networks(security.trusted_proxies),
        limiter=app[RATE_LIMITER],
        metrics=metrics,
        pseudonymize=app[PSEUDONYM],
    )
    app.middlewares.append(observe(metrics=metrics, gateways=gateways, guard=guard))
    health.setup(app)
    admin.setup(app)


def mount_token_routes(app: web.Application, gateways: Sequence[Gateway]) -> None:
    """After the channels' routes exist: alias them under each gateway's path token."""
    for gateway in gateways:
        add_token_routes(app, gateway)
