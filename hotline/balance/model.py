"""The normalized balance every provider returns and every flow reads (reference §7.1).

Money is `hotline.base.values.Money` (integer minor units), so the flows get the very type
their prompts render. Quantities are integers in one of four units. All timestamps are
timezone-aware; an invalid snapshot cannot be built.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from hotline.base.values import Money

__all__ = [
    "AccountStatus",
    "BalanceSnapshot",
    "Bucket",
    "Money",
    "Quantity",
    "UsageType",
]

UsageType = Literal["monetary", "voice", "data", "sms", "other"]
AccountStatus = Literal["active", "suspended", "barred", "inactive", "unknown"]
QUANTITY_MAX = 2**63 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Quantity(_Strict):
    """A non-negative integer amount of something that is not money."""

    value: int = Field(ge=0, le=QUANTITY_MAX)
    unit: Literal["byte", "second", "message", "unit"]


_UNIT_OF: dict[str, str] = {"data": "byte", "voice": "second", "sms": "message"}


class Bucket(_Strict):
    """One allowance (TMF654 Bucket): 话费 account, data, voice or SMS package."""

    id: str = Field(min_length=1, max_length=64)
    usage_type: UsageType
    name: str | None = Field(None, max_length=32)
    remaining: Money | Quantity
    total: Money | Quantity | None = None
    # "unknown": the upstream sent a status we cannot read; its amount is not shown.
    status: Literal["active", "suspended", "expired", "unknown"] = "active"
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    is_shared: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        monetary = self.usage_type == "monetary"
        for value in (self.remaining, self.total):
            if value is None:
                continue
            if monetary != isinstance(value, Money):
                raise ValueError("a monetary bucket holds Money, any other bucket a Quantity")
            expected = _UNIT_OF.get(self.usage_type)
            if isinstance(value, Quantity) and expected and value.unit != expected:
                raise ValueError(f"a {self.usage_type} bucket counts in {expected}s")
        if self.name is not None and any(ord(ch) < 32 for ch in self.name):
            raise ValueError("bucket name has control characters")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class BalanceSnapshot(_Strict):
    """What one subscriber has, as of one moment, from one provider.

    `subscriber_token` is the pseudonym; the MSISDN itself is never stored here.
    `stale` is set by the cache when it serves an answer older than `fresh_ttl`
    (the flows then say "截至HH:MM" from `as_of`).
    """

    subscriber_token: str = Field(min_length=1, max_length=64)
    account_status: AccountStatus
    payment_type: Literal["prepaid", "postpaid", "hybrid", "unknown"] = "unknown"
    main_balance: Money | None
    credit_limit: Money | None = None
    buckets: tuple[Bucket, ...] = ()
    as_of: AwareDatetime
    fetched_at: AwareDatetime
    provider: str = Field(min_length=1, max_length=32)
    warnings: tuple[str, ...] = ()
    stale: bool = False

    @model_validator(mode="after")
    def _utc(self) -> Self:
        if self.main_balance is None and not self.buckets:
            raise ValueError("a snapshot needs a main balance or at least one bucket")
        for moment in (self.as_of, self.fetched_at):
            if moment.utcoffset() != dt.timedelta(0):
                raise ValueError("as_of and fetched_at must be in UTC")
        return self

    def bucket(self, usage_type: UsageType) -> Bucket | None:
        """The first active bucket of a kind (what a one-line prompt shows), if any."""
        for bucket in self.buckets:
            if bucket.usage_type == usage_type and bucket.status == "active":
                return bucket
        return None

    def as_stale(self) -> BalanceSnapshot:
        """The same answer, marked as served past its freshness bound."""
        return self.model_copy(update={"stale": True})
