"""Sign-in: client credentials, the H5 page's client, the SMS code, the subscriber token.

`POST /auth/otp` answers the same whether or not the operator knows the number (no
"this number exists" oracle): the code goes to the outbox either way, and a number the
billing system does not know only learns so from `/me/*` after a correct code.
"""

from __future__ import annotations

import hmac

from pydantic import BaseModel, ConfigDict

from api.errors import ApiError
from api.models import (
    ClientTokenBody,
    ClientTokenRequest,
    OtpBody,
    OtpRequest,
    SubscriberTokenBody,
    TokenRequest,
)
from api.pipeline import H5_CLIENT
from api.routing import ApiCall, ApiRoute
from api.state import ApiState
from api.store import hash_secret
from hotline.balance.msisdn import e164
from hotline.base.privacy import canonical_msisdn, mask_msisdn
from hotline.base.values import Count, Digits

__all__ = ["H5_SCOPES", "ROUTES", "RevokedBody", "issue_subscriber_token"]

#: What the built-in H5 page may read.
H5_SCOPES = frozenset({"balance:read", "allowances:read", "plan:read"})


class RevokedBody(BaseModel):
    model_config = ConfigDict(frozen=True)

    revoked: bool = True


def _phone(raw: str) -> str:
    """The number in its E.164 form; `invalid_phone` otherwise (the number not echoed)."""
    try:
        return e164(canonical_msisdn(raw))
    except ValueError as exc:
        raise ApiError("invalid_phone", str(exc)) from exc


def _state(call: ApiCall) -> ApiState:
    assert call.ctx.state is not None  # the pipeline answered 503 otherwise
    return call.ctx.state


async def client_token(call: ApiCall) -> ClientTokenBody:
    body = call.body
    assert isinstance(body, ClientTokenRequest)
    ctx = call.ctx
    gate = await _state(call).gate(
        client=body.client_id,
        jti=None,
        client_rate=ctx.client_window,
        subscriber=None,
        subscriber_rate=ctx.subscriber_window,
    )
    if gate.client_over:
        raise ApiError("rate_limited", "over the client rate", retry_after=gate.client_over)
    record = await ctx.store.client(body.client_id)
    given = hash_secret(body.client_secret)
    expected = record.secret_sha256 if record is not None else hash_secret("-")
    if record is None or not hmac.compare_digest(given, expected) or record.revoked_at:
        raise ApiError("invalid_client")
    call.client_id, call.client_name = record.id, record.name
    token, claims = ctx.tokens.issue(
        "client",
        client=record.id,
        client_name=record.name,
        scopes=frozenset(record.scopes),
        ttl=ctx.api.client_token_ttl,
    )
    return ClientTokenBody(
        access_token=token,
        expires_in=ctx.api.client_token_ttl,
        scope=" ".join(sorted(claims.scopes)),
    )


async def h5_token(call: ApiCall) -> ClientTokenBody:
    ctx = call.ctx
    if not ctx.api.h5:
        raise ApiError("not_found")
    gate = await _state(call).gate(
        client=H5_CLIENT,
        jti=None,
        client_rate=ctx.h5_window,
        subscriber=None,
        subscriber_rate=ctx.subscriber_window,
    )
    if gate.client_revoked:
        raise ApiError("invalid_client", "the H5 client was revoked")
    if gate.client_over:
        raise ApiError("rate_limited", "over the client rate", retry_after=gate.client_over)
    call.client_id = call.client_name = H5_CLIENT
    token, _ = ctx.tokens.issue(
        "client",
        client=H5_CLIENT,
        client_name=H5_CLIENT,
        scopes=H5_SCOPES,
        ttl=ctx.api.client_token_ttl,
    )
    return ClientTokenBody(
        access_token=token, expires_in=ctx.api.client_token_ttl, scope=" ".join(sorted(H5_SCOPES))
    )


async def send_code(call: ApiCall) -> OtpBody:
    body = call.body
    assert isinstance(body, OtpRequest)
    ctx, state = call.ctx, _state(call)
    phone = _phone(body.phone)
    pseudonym = call.subscriber = ctx.pseudonym(phone)
    locked = await state.locked_for(pseudonym)
    if locked:
        raise ApiError("code_locked", retry_after=locked)
    wait = await state.may_send(pseudonym, ctx.api.otp_resend)
    if wait:
        raise ApiError("resend_too_soon", retry_after=wait)
    messages = ctx.services.messages
    if messages is None:
        raise ApiError("service_unavailable", "no SMS outbox")
    language = body.language if body.language in ctx.settings.languages else call.language
    code = await state.new_code(pseudonym, ctx.api.otp_ttl)
    await messages.send(
        phone,
        "otp.code",
        {"code": Digits(code), "minutes": Count(ctx.api.otp_ttl // 60)},
        language,
        kind="otp",
    )
    return OtpBody(expires_in=ctx.api.otp_ttl, resend_after=ctx.api.otp_resend)


async def subscriber_token(call: ApiCall) -> SubscriberTokenBody:
    body = call.body
    assert isinstance(body, TokenRequest) and call.claims is not None
    ctx = call.ctx
    phone = _phone(body.phone)
    pseudonym = call.subscriber = ctx.pseudonym(phone)
    check = await _state(call).check_code(
        pseudonym, body.code, max_tries=ctx.api.otp_max_tries, lock=ctx.api.otp_lock
    )
    if check.result == "locked":
        raise ApiError("code_locked", retry_after=check.retry_after)
    if check.result != "ok":
        raise ApiError("invalid_code")
    return issue_subscriber_token(call, phone)


def issue_subscriber_token(call: ApiCall, phone: str) -> SubscriberTokenBody:
    """A subscriber token for `phone` (E.164, proven by the caller), with the calling
    client's identity and scopes; the answer shows the number masked."""
    client = call.claims
    assert client is not None
    ctx = call.ctx
    token, claims = ctx.tokens.issue(
        "subscriber",
        client=client.client,
        client_name=client.client_name,
        scopes=client.scopes,
        ttl=ctx.api.subscriber_token_ttl,
        msisdn=phone,
    )
    return SubscriberTokenBody(
        access_token=token,
        expires_in=ctx.api.subscriber_token_ttl,
        scope=" ".join(sorted(claims.scopes)),
        subscriber=mask_msisdn(phone),
    )


async def revoke(call: ApiCall) -> RevokedBody:
    claims = call.claims
    assert claims is not None
    await call.ctx.store.revoke_token(claims.jti, claims.expires_at, "signed out")
    await _state(call).revoke_token(claims.jti, claims.expires_at)
    return RevokedBody()


_SIGN_IN = ("rate_limited", "invalid_client", "token_revoked")

ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "POST",
        "/auth/client-token",
        "clientToken",
        "A client token for client credentials (OAuth 2.0 client_credentials, JSON)",
        client_token,
        ClientTokenBody,
        auth="none",
        body=ClientTokenRequest,
        errors=("invalid_client", "rate_limited"),
        tag="auth",
    ),
    ApiRoute(
        "POST",
        "/auth/h5",
        "h5Token",
        "A client token for hotline's own H5 page (public client, limited scopes)",
        h5_token,
        ClientTokenBody,
        auth="none",
        errors=("invalid_client", "rate_limited", "not_found"),
        tag="auth",
    ),
    ApiRoute(
        "POST",
        "/auth/otp",
        "sendCode",
        "Send a 6-digit sign-in code by SMS (the answer never says if the number exists)",
        send_code,
        OtpBody,
        auth="client",
        body=OtpRequest,
        status=202,
        errors=(*_SIGN_IN, "invalid_phone", "code_locked", "resend_too_soon"),
        tag="auth",
    ),
    ApiRoute(
        "POST",
        "/auth/token",
        "subscriberToken",
        "Exchange the SMS code for a short-lived subscriber token",
        subscriber_token,
        SubscriberTokenBody,
        auth="client",
        body=TokenRequest,
        errors=(*_SIGN_IN, "invalid_phone", "invalid_code", "code_locked"),
        tag="auth",
    ),
    ApiRoute(
        "POST",
        "/auth/revoke",
        "revokeToken",
        "Sign out: revoke the subscriber token this request carries, at once",
        revoke,
        RevokedBody,
        auth="subscriber",
        errors=_SIGN_IN,
        tag="auth",
    ),
)
