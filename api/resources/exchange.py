"""`POST /auth/exchange`: a WeChat getPhoneNumber code or an operator one-tap token →
a subscriber token, through the configured exchange (`api.identity`, `api.identity`
package). The number comes from the provider, never from the app."""

from __future__ import annotations

import logging

from api.errors import ApiError
from api.identity import IdentityRefused, IdentityUnavailable
from api.models import ExchangeRequest, SubscriberTokenBody
from api.resources.auth import issue_subscriber_token
from api.routing import ApiCall, ApiRoute
from hotline.balance.msisdn import e164
from hotline.base.privacy import canonical_msisdn

__all__ = ["ROUTES"]

log = logging.getLogger(__name__)


async def exchange(call: ApiCall) -> SubscriberTokenBody:
    body = call.body
    assert isinstance(body, ExchangeRequest) and call.claims is not None
    ctx = call.ctx
    provider = ctx.exchanges.get(body.provider)
    if provider is None:
        raise ApiError("unknown_provider", f"configured: {', '.join(ctx.exchanges) or 'none'}")
    try:
        raw = await provider.phone(body.code)
        phone = e164(canonical_msisdn(raw))
    except IdentityRefused as exc:
        raise ApiError("invalid_code", f"{body.provider} refused the code") from exc
    except (IdentityUnavailable, ValueError) as exc:
        log.info("identity exchange %s failed: %s", body.provider, type(exc).__name__)
        raise ApiError("upstream_unavailable", retry_after=5) from exc
    call.subscriber = ctx.pseudonym(phone)
    return issue_subscriber_token(call, phone)


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "POST",
        "/auth/exchange",
        "exchangeIdentity",
        "Exchange a WeChat getPhoneNumber code or an operator one-tap token for a subscriber token",
        exchange,
        SubscriberTokenBody,
        auth="client",
        body=ExchangeRequest,
        errors=("unknown_provider", "invalid_code", "upstream_unavailable"),
        tag="auth",
    ),
)
