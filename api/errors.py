"""The one error shape (RFC 9457 problem details) and the stable table of error codes.

Every error the API answers is an `ApiError` carrying one code of `ERRORS`; the code,
its HTTP status and its zh/en words never change once shipped (docs/api.md lists them,
the OpenAPI document carries them, a test keeps the three in step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

__all__ = ["ERRORS", "PROBLEM_TYPE", "ApiError", "ErrorCode", "problem_response"]

PROBLEM_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of the error table."""

    status: int
    en: str
    zh: str
    action: str


ERRORS: Mapping[str, ErrorCode] = {
    "bad_request": ErrorCode(
        400, "The request is malformed.", "请求格式有误。", "Fix the fields named in `errors`."
    ),
    "invalid_phone": ErrorCode(
        400,
        "That is not a phone number.",
        "手机号码格式有误。",
        "Send 5-15 digits, e.g. +8613800138000.",
    ),
    "invalid_code": ErrorCode(
        401,
        "The code is wrong or has expired.",
        "验证码错误或已过期。",
        "Ask the subscriber to retype it, or request a new code.",
    ),
    "idempotency_key_missing": ErrorCode(
        400,
        "The Idempotency-Key header is missing or malformed.",
        "缺少 Idempotency-Key 请求头，或其格式有误。",
        "Send a new Idempotency-Key (8-64 letters, digits, - or _) per order; reuse it "
        "only to retry that order.",
    ),
    "invalid_threshold": ErrorCode(
        400,
        "That reminder amount is not offered.",
        "不支持该提醒金额。",
        "Send one of the amounts `detail` names (GET /me/reminders lists them).",
    ),
    "unauthorized": ErrorCode(
        401,
        "Missing, invalid or expired credentials.",
        "缺少凭证，或凭证无效、已过期。",
        "Get a new token (client credentials or sign-in) and retry.",
    ),
    "invalid_client": ErrorCode(
        401,
        "Unknown client, wrong secret or revoked client.",
        "客户端不存在、密钥错误或已被吊销。",
        "Check the client id and secret; ask the operator if the client was revoked.",
    ),
    "token_revoked": ErrorCode(
        401, "This token was revoked.", "该令牌已被吊销。", "Sign the subscriber in again."
    ),
    "insufficient_scope": ErrorCode(
        403,
        "The client may not use this endpoint.",
        "该客户端无权访问此接口。",
        "Ask the operator to grant the scope named in `detail`.",
    ),
    "wrong_token_type": ErrorCode(
        403,
        "This endpoint needs another kind of token.",
        "此接口需要另一种令牌。",
        "Use a client token for /auth/*, a subscriber token for /me/*.",
    ),
    "not_found": ErrorCode(
        404, "No such endpoint.", "接口不存在。", "Check the path against /api/v1/openapi.json."
    ),
    "subscriber_not_found": ErrorCode(
        404,
        "The operator does not know this number.",
        "未查到该号码的信息。",
        "Tell the subscriber to contact customer service.",
    ),
    "unknown_provider": ErrorCode(
        404,
        "No identity exchange of that name here.",
        "不支持该身份验证方式。",
        "Use a provider the operator configured (api.identity).",
    ),
    "order_not_found": ErrorCode(
        404,
        "No such order for this subscriber.",
        "未查到该订单。",
        "Check the order id that POST /me/orders answered.",
    ),
    "method_not_allowed": ErrorCode(
        405, "Method not allowed here.", "不支持该请求方法。", "Use the method the document names."
    ),
    "payload_too_large": ErrorCode(
        413, "The body is too large.", "请求体过大。", "Send a smaller body (see `detail`)."
    ),
    "unsupported_media_type": ErrorCode(
        415,
        "The body must be application/json.",
        "请求体必须为 application/json。",
        "Send Content-Type: application/json.",
    ),
    "offer_changed": ErrorCode(
        409,
        "The offer was withdrawn or repriced since it was shown.",
        "该套餐已下架或价格已变更。",
        "List the offers again, show the new price, order with a new Idempotency-Key.",
    ),
    "insufficient_balance": ErrorCode(
        409,
        "The balance is too low; nothing was charged.",
        "余额不足，办理未成功，未扣费。",
        "Ask the subscriber to top up, then order with a new Idempotency-Key.",
    ),
    "not_eligible": ErrorCode(
        409,
        "This offer is not open to the subscriber.",
        "您暂不符合该业务的办理条件。",
        "Offer another one: GET /me/offers lists those open to them.",
    ),
    "already_has": ErrorCode(
        409,
        "The subscriber already has this offer.",
        "您已办理该业务。",
        "Nothing to do; GET /me/plan shows it.",
    ),
    "account_suspended": ErrorCode(
        409,
        "The number is suspended.",
        "您的号码已停机。",
        "Ask the subscriber to top up first.",
    ),
    "idempotency_key_reused": ErrorCode(
        422,
        "This Idempotency-Key was used for a different order.",
        "该 Idempotency-Key 已用于另一笔订单。",
        "Use a new key for a new order; resend a key only with the very same body.",
    ),
    "rate_limited": ErrorCode(
        429, "Too many requests.", "请求过于频繁。", "Wait `retry_after` seconds, then retry."
    ),
    "code_locked": ErrorCode(
        429,
        "Too many wrong codes; sign-in is locked for a while.",
        "验证码错误次数过多，已暂时锁定。",
        "Wait `retry_after` seconds, then request a new code.",
    ),
    "resend_too_soon": ErrorCode(
        429,
        "A code was sent moments ago.",
        "验证码刚刚已发送，请稍后再试。",
        "Wait `retry_after` seconds before asking for another code.",
    ),
    "internal": ErrorCode(
        500,
        "Something went wrong on our side.",
        "系统内部错误。",
        "Retry later; quote `instance` to support.",
    ),
    "upstream_unavailable": ErrorCode(
        503,
        "The balance system is not answering.",
        "计费系统暂时无法访问。",
        "Retry after `retry_after` seconds.",
    ),
    "ordering_unavailable": ErrorCode(
        503,
        "The ordering system could not take the order; nothing was charged.",
        "业务办理系统暂时无法受理，未扣费。",
        "Retry after `retry_after` seconds with a new Idempotency-Key.",
    ),
    "service_unavailable": ErrorCode(
        503,
        "The API is not available on this server.",
        "该服务暂不可用。",
        "Retry after `retry_after` seconds; if it lasts, the operator must configure "
        "redis_url or bring the API store back.",
    ),
}


class ApiError(Exception):
    """An answer with one of `ERRORS`' codes; `detail` says what exactly, in English."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown API error code {code!r}")
        super().__init__(code)
        self.code = code
        self.detail = detail
        self.errors = tuple(errors)
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return ERRORS[self.code].status


def problem_response(error: ApiError, *, language: str, instance: str) -> web.Response:
    """The problem-details answer for `error`, its title in `language` (zh or en)."""
    row = ERRORS[error.code]
    body: dict[str, Any] = {
        "type": f"/api/v1/docs#error-{error.code}",
        "title": row.zh if language.lower().startswith("zh") else row.en,
        "status": row.status,
        "code": error.code,
        "instance": instance,
    }
    if error.detail:
        body["detail"] = error.detail
    if error.errors:
        body["errors"] = list(error.errors)
    headers = dict(error.headers)
    headers["Cache-Control"] = "no-store"  # an answer about one caller, at one moment
    if error.retry_after is not None:
        body["retry_after"] = error.retry_after
        headers["Retry-After"] = str(error.retry_after)
    if error.code == "unauthorized":
        headers.setdefault("WWW-Authenticate", 'Bearer realm="hotline"')
    return web.Response(
        status=row.status,
        body=orjson.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )
