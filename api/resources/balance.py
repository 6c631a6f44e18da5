"""`/me/balance` and `/me/allowances`: the signed-in subscriber's figures.

Read through `Services.balance` — the provider inside its resilience layers and cache
that USSD's `balance.lookup` reads — and shaped by `api.views`.
"""

from __future__ import annotations

import datetime as dt
import logging

from api.errors import ApiError
from api.models import AllowancesBody, AllowancesJson, BalanceBody, BalanceJson
from api.routing import ApiCall, ApiRoute
from api.views import Freshness, allowances_body, balance_body
from hotline.balance.model import BalanceSnapshot
from hotline.base.errors import RateLimited, UpstreamError, UpstreamNotFound

__all__ = ["ME_ERRORS", "ROUTES", "snapshot"]

log = logging.getLogger(__name__)
ME_ERRORS = (
    "rate_limited",
    "invalid_client",
    "token_revoked",
    "insufficient_scope",
    "wrong_token_type",
    "subscriber_not_found",
    "upstream_unavailable",
)


async def snapshot(call: ApiCall) -> tuple[BalanceSnapshot, Freshness]:
    """The subscriber's snapshot and its freshness, or the matching API error."""
    service = call.ctx.services.balance
    if service is None:
        raise ApiError("upstream_unavailable", "no balance provider", retry_after=30)
    try:
        found = await service.fetch(call.msisdn)
    except UpstreamNotFound as exc:
        raise ApiError("subscriber_not_found") from exc
    except RateLimited as exc:
        raise ApiError("rate_limited", "over the balance lookup rate", retry_after=60) from exc
    except UpstreamError as exc:
        log.info("balance lookup failed: %s", type(exc).__name__)
        raise ApiError("upstream_unavailable", retry_after=5) from exc
    fresh = Freshness(found, dt.datetime.now(dt.UTC), service.fresh_for, call.ctx.zone)
    return found, fresh


async def get_balance(call: ApiCall) -> BalanceJson:
    found, fresh = await snapshot(call)
    return balance_body(found, fresh, call.ctx.catalogs[call.language])


async def get_allowances(call: ApiCall) -> AllowancesJson:
    _, fresh = await snapshot(call)
    return allowances_body(fresh, call.ctx.catalogs[call.language])


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "GET",
        "/me/balance",
        "getBalance",
        "The main balance (话费余额) in minor units and as text, with as_of and stale",
        get_balance,
        BalanceBody,
        scope="balance:read",
        errors=ME_ERRORS,
    ),
    ApiRoute(
        "GET",
        "/me/allowances",
        "getAllowances",
        "Data, voice and SMS allowances left, with their earliest expiry",
        get_allowances,
        AllowancesBody,
        scope="allowances:read",
        errors=ME_ERRORS,
    ),
)
