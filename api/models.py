"""Request and response bodies as pydantic models: the handlers' types and, through
`model_json_schema`, the OpenAPI document's schemas (JSON Schema 2020-12, as 3.1 wants).

Requests forbid unknown fields, so a typo is a 400 naming the field, not a silent no-op.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Allowance",
    "AllowanceJson",
    "AllowancesBody",
    "AllowancesJson",
    "Amount",
    "AmountJson",
    "BalanceBody",
    "BalanceJson",
    "ClientTokenBody",
    "ClientTokenRequest",
    "ExchangeRequest",
    "FreshJson",
    "OtpBody",
    "OtpRequest",
    "PlanBody",
    "PlanBucket",
    "PlanBucketJson",
    "PlanJson",
    "Problem",
    "Quantity",
    "QuantityJson",
    "SubscriberTokenBody",
    "TokenRequest",
]


_PHONE = r"^\+?[1-9][0-9]{4,14}$"
_PHONE_TEXT = "E.164 digits with an optional +: +8613800138000 (8613800138000, 13800138000)"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class ClientTokenRequest(_Request):
    """OAuth 2.0 client credentials (RFC 6749 §4.4), as JSON."""

    grant_type: Literal["client_credentials"]
    client_id: str = Field(min_length=1, max_length=40)
    client_secret: str = Field(min_length=1, max_length=128)


class OtpRequest(_Request):
    """Send a sign-in code by SMS to this number."""

    phone: str = Field(pattern=_PHONE, examples=["+8613800138000"], description=_PHONE_TEXT)
    language: str | None = Field(
        None, max_length=16, description="language of the SMS; default Accept-Language"
    )


class TokenRequest(_Request):
    """Exchange the SMS code for a subscriber token."""

    phone: str = Field(pattern=_PHONE, examples=["+8613800138000"], description=_PHONE_TEXT)
    code: str = Field(pattern=r"^[0-9]{6}$", examples=["123456"])


class ExchangeRequest(_Request):
    """Exchange a mini-program's getPhoneNumber code or a one-tap token for a
    subscriber token."""

    provider: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", examples=["wechat", "onetap"])
    code: str = Field(min_length=1, max_length=512)


class ClientTokenBody(_Body):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str


class SubscriberTokenBody(_Body):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str
    subscriber: str = Field(description="the number, masked: 138****8000")


class OtpBody(_Body):
    """The same answer whether or not the operator knows the number."""

    sent: Literal[True] = True
    expires_in: int
    resend_after: int


class Amount(_Body):
    """Money in integer minor units, and as the subscriber's language writes it."""

    minor: int = Field(description="minor units (fen): 1250 is 12.50")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    exponent: int = Field(ge=0, le=4)
    display: str = Field(examples=["12.50元", "CNY 12.50"])


class Quantity(_Body):
    value: int = Field(ge=0)
    unit: Literal["byte", "second", "message"]
    display: str = Field(examples=["1.50GB", "100分钟", "20"])


class _Fresh(_Body):
    as_of: str = Field(description="when the data was true (RFC 3339, UTC)")
    stale: bool = Field(description="older than the freshness bound USSD uses")
    as_of_display: str | None = Field(None, description="the 'as of HH:MM' note when stale")
    language: str


class BalanceBody(_Fresh):
    status: Literal["ok", "owed", "unknown"]
    balance: Amount | None = Field(description="negative when owed; null when unknown")
    text: str = Field(description="the sentence USSD shows for it")
    account_status: str


class Allowance(_Body):
    kind: Literal["data", "voice", "sms"]
    status: Literal["active", "none", "unknown"]
    remaining: Quantity | None
    expires: str | None = Field(None, description="earliest expiry (date, local time)")
    expires_display: str | None = None
    text: str = Field(description="the sentence USSD shows for it")


class AllowancesBody(_Fresh):
    allowances: list[Allowance]


class PlanBucket(_Body):
    id: str
    name: str | None
    kind: Literal["monetary", "voice", "data", "sms", "other"]
    status: str
    remaining: Amount | Quantity | None
    total: Amount | Quantity | None
    valid_until: str | None


class PlanBody(_Fresh):
    account_status: str
    payment_type: str
    credit_limit: Amount | None
    buckets: list[PlanBucket]


class Problem(_Body):
    """RFC 9457 problem details; `code` is one of the error table's."""

    type: str
    title: str
    status: int
    code: str
    instance: str
    detail: str | None = None
    errors: list[dict[str, str]] | None = None
    retry_after: int | None = None


# The `/me/*` answers as the handlers build them: plain dicts of exactly the models'
# fields, encoded by orjson. Building and validating a model on every answer cost more
# than the rest of the handler; the models above stay the contract (the OpenAPI
# document's schemas) and the tests hold every answer to them (schemathesis, and
# tests/api/test_me.py checks these keys equal the models' fields).


class AmountJson(TypedDict):
    minor: int
    currency: str
    exponent: int
    display: str


class QuantityJson(TypedDict):
    value: int
    unit: Literal["byte", "second", "message"]
    display: str


class FreshJson(TypedDict):
    as_of: str
    stale: bool
    as_of_display: str | None
    language: str


class BalanceJson(FreshJson):
    status: Literal["ok", "owed", "unknown"]
    balance: AmountJson | None
    text: str
    account_status: str


class AllowanceJson(TypedDict):
    kind: Literal["data", "voice", "sms"]
    status: Literal["active", "none", "unknown"]
    remaining: QuantityJson | None
    expires: str | None
    expires_display: str | None
    text: str


class AllowancesJson(FreshJson):
    allowances: list[AllowanceJson]


class PlanBucketJson(TypedDict):
    id: str
    name: str | None
    kind: Literal["monetary", "voice", "data", "sms", "other"]
    status: str
    remaining: AmountJson | QuantityJson | None
    total: AmountJson | QuantityJson | None
    valid_until: str | None


class PlanJson(FreshJson):
    account_status: str
    payment_type: str
    credit_limit: AmountJson | None
    buckets: list[PlanBucketJson]
