"""The one pipeline every API operation runs through, and the `/api/v1` problem routes.

In order: language (`Accept-Language`), the bearer token (verified, of the route's
kind, holding the route's scope), one Redis round trip for revocations and the
per-client and per-subscriber limits, the JSON body (type, size, shape), the handler.
Whatever fails answers with the error table's problem details; an exception nobody
expected is logged (no body, no number) and answered as `internal`, never as a
traceback. Every call that reached an operation is counted per client name and
audited (pseudonymous subscriber, client, endpoint, outcome).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import orjson
from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from api.context import ApiContext, choose_language
from api.errors import ApiError, problem_response
from api.routing import PREFIX, ApiCall, ApiRoute
from api.state import Window
from api.store import AuditRow
from api.tokens import Claims, TokenError
from hotline.web.keys import SETTINGS

__all__ = ["API", "add_problem_routes", "endpoint", "read_body"]

log = logging.getLogger(__name__)
API: web.AppKey[ApiContext] = web.AppKey("API")
H5_CLIENT = "h5"
_JSON_TYPES = ("application/json",)
# Every successful answer's headers; `web.Response` copies them into its own.
_JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get("X-Request-Id", "")
    return incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else ""


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("unauthorized", "send Authorization: Bearer <token>")
    return token.strip()


def _authenticate(request: web.Request, ctx: ApiContext) -> Claims:
    try:
        return ctx.tokens.verify(_bearer(request))
    except TokenError as exc:
        raise ApiError("unauthorized", "the token is invalid or has expired") from exc


def _authorize(claims: Claims, route: ApiRoute) -> None:
    if claims.typ != route.auth:
        raise ApiError("wrong_token_type", f"this endpoint needs a {route.auth} token")
    if route.scope is not None and route.scope not in claims.scopes:
        raise ApiError("insufficient_scope", f"needs scope {route.scope}")


async def read_body(request: web.Request, model: type[BaseModel], limit: int) -> BaseModel:
    """The JSON body as `model`: 415 unless JSON, 413 when too big, 400 with reasons."""
    if request.content_type not in _JSON_TYPES:
        raise ApiError("unsupported_media_type", f"got {request.content_type or 'no type'}")
    if request.content_length is not None and request.content_length > limit:
        raise ApiError("payload_too_large", f"at most {limit} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError("payload_too_large", f"at most {limit} bytes") from exc
    if len(raw) > limit:
        raise ApiError("payload_too_large", f"at most {limit} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError("bad_request", "the body is not JSON") from exc
    if not isinstance(data, dict):
        raise ApiError("bad_request", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        reasons = [
            {
                "field": ".".join(str(part) for part in error["loc"]) or "(body)",
                "reason": error["msg"],
            }
            for error in exc.errors(include_url=False, include_input=False)[:20]
        ]
        raise ApiError("bad_request", "some fields are wrong", errors=reasons) from exc


async def _gate(call: ApiCall, claims: Claims) -> None:
    ctx = call.ctx
    assert ctx.state is not None
    window: Window = ctx.h5_window if claims.client == H5_CLIENT else ctx.client_window
    answer = await ctx.state.gate(
        client=claims.client,
        jti=claims.jti,
        client_rate=window,
        subscriber=call.subscriber,
        subscriber_rate=ctx.subscriber_window,
    )
    if answer.client_revoked:
        raise ApiError("invalid_client", "this client was revoked")
    if answer.token_revoked:
        raise ApiError("token_revoked")
    wait = max(answer.client_over, answer.subscriber_over)
    if wait:
        who = "client" if answer.client_over else "subscriber"
        raise ApiError("rate_limited", f"over the {who} rate", retry_after=wait)


def _encode(result: BaseModel | Mapping[str, object]) -> bytes:
    if isinstance(result, BaseModel):
        return result.__pydantic_serializer__.to_json(result)
    return orjson.dumps(result)


def endpoint(route: ApiRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler running `route` through the pipeline."""
    handler, status, name, method = route.handler, route.status, route.name, route.method
    needs_token, body_model = route.auth != "none", route.body

    async def handle(request: web.Request) -> web.StreamResponse:
        ctx = request.app[API]
        started = time.perf_counter()
        settings = ctx.settings
        headers = request.headers
        language = choose_language(
            headers.get("Accept-Language", ""), settings.languages, settings.default_language
        )
        call = ApiCall(request, ctx, language)
        request_id = _request_id(request)
        outcome = "ok"
        audit = ctx.audit
        audited = True
        response: web.StreamResponse
        try:
            if ctx.state is None:
                raise ApiError("service_unavailable", "no redis_url configured")
            if audit.full:  # back-pressure: nothing is served that could not be audited
                audited = False
                ctx.metrics.audit_refused.inc()
                raise ApiError("service_unavailable", "the audit store is down", retry_after=5)
            if needs_token:
                call.claims = verified = _authenticate(request, ctx)
                if verified.msisdn is not None:
                    call.subscriber = ctx.pseudonym(verified.msisdn)
                _authorize(verified, route)
                await _gate(call, verified)
            if body_model is not None:
                call.body = await read_body(request, body_model, ctx.api.max_body_bytes)
            response = web.Response(
                status=status, body=_encode(await handler(call)), headers=_JSON_HEADERS
            )
        except ApiError as exc:
            outcome = exc.code
            response = problem_response(exc, language=language, instance=request_id or "-")
        except (OSError, RedisError) as exc:  # Redis (or the store) is out of reach
            log.warning("API %s: %s", name, type(exc).__name__)
            outcome = "service_unavailable"
            unavailable = ApiError("service_unavailable", "try again shortly", retry_after=5)
            response = problem_response(unavailable, language=language, instance=request_id or "-")
        except Exception:  # a bug: say so without a traceback on the wire
            log.exception("API %s failed", name)
            outcome = "internal"
            response = problem_response(
                ApiError("internal"), language=language, instance=request_id or "-"
            )
        claims = call.claims
        client = claims.client_name if claims is not None else call.client_name or "-"
        ctx.metrics.observe(client, name, outcome, time.perf_counter() - started)
        if not audited:
            return response
        audit.add(
            AuditRow(
                time.time(),
                claims.client if claims is not None else call.client_id or "-",
                call.subscriber,
                name,
                method,
                response.status,
                outcome,
                claims.jti if claims is not None else None,
                request_id or None,
            )
        )
        return response

    return handle


def _language(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    return choose_language(
        request.headers.get("Accept-Language", ""), settings.languages, settings.default_language
    )


def _not_allowed(allowed: Sequence[str]) -> Callable[[web.Request], Awaitable[web.Response]]:
    headers = {"Allow": ", ".join(sorted(allowed))}

    async def handler(request: web.Request) -> web.Response:
        error = ApiError("method_not_allowed", headers=headers)
        return problem_response(
            error, language=_language(request), instance=_request_id(request) or "-"
        )

    return handler


async def _not_found(request: web.Request) -> web.Response:
    error = ApiError("not_found")
    return problem_response(
        error, language=_language(request), instance=_request_id(request) or "-"
    )


def add_problem_routes(router: web.UrlDispatcher) -> None:
    """Under `/api/v1`, problem details where aiohttp would answer with its text page:
    a method a path does not serve (405, with `Allow`) and a path nothing serves (404).
    Routes, not a middleware, so no other channel's request pays for them. Call once
    every `/api/v1` route is in (a resource added later gets no 405 of its own)."""
    # One path may be several resources (one per named route): the 405 goes on the last
    # one, which aiohttp tries after the others, and allows what all of them serve.
    last: dict[str, web.Resource] = {}
    allowed: dict[str, set[str]] = {}
    for resource in router.resources():
        canonical = resource.canonical
        if canonical != PREFIX and not canonical.startswith(PREFIX + "/"):
            continue
        if isinstance(resource, web.Resource):
            last[canonical] = resource
            allowed.setdefault(canonical, set()).update(route.method for route in resource)
    for canonical, resource in last.items():
        if hdrs.METH_ANY not in allowed[canonical]:
            resource.add_route(hdrs.METH_ANY, _not_allowed(sorted(allowed[canonical])))
    # Tried after every more specific resource: aiohttp looks up the longest prefix first.
    router.add_route(hdrs.METH_ANY, PREFIX + "{rest:(/.*)?}", _not_found, name="api-not_found")
