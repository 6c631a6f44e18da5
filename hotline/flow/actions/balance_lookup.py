"""`balance.lookup`: the subscriber's balances into prompt values and flags.

Every figure a screen may show ends as exactly one of: its value (`balance`/`owed`,
`data`, `voice`, `sms`), `no_<figure>` (the answer says there is none), or
`<figure>_unknown` (the answer is valid but cannot tell: a null main balance, a bucket
whose status the upstream spelled in a way we do not know), so an end state always has a
sentence to show. Data older than the balance service's `fresh_for` — by its own `as_of`
or by how long the cache kept it, whichever is older — is flagged `stale` with its time
in `as_of`, so old data is never shown as current.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from hotline.base.errors import RateLimited, UpstreamError, UpstreamNotFound
from hotline.base.values import Clock, Count, Date, Duration, Money, Value, Volume
from hotline.flow.actions.base import ERROR, OK, ActionContext, VariableType, action

if TYPE_CHECKING:
    from hotline.balance.model import BalanceSnapshot

__all__ = ["MIN_FRESHNESS", "balance_lookup", "is_stale", "snapshot_variables"]

log = logging.getLogger(__name__)

#: Data younger than this is current whatever `fresh_for` says: the requirement is
#: second-level freshness, and `fresh_ttl: 0` means "do not cache", not "nothing is current".
MIN_FRESHNESS = 1.0

_SUSPENDED = frozenset({"suspended", "barred", "inactive"})
_KINDS: dict[str, tuple[Callable[[int], Value], str]] = {
    "data": (Volume, "byte"),
    "voice": (Duration, "second"),
    "sms": (Count, "message"),
}
#: Per usage: its maker, unit and the names of its `*_unknown`, `no_*` and `*_expiry`
#: variables, spelled once (not three f-strings per usage on every lookup).
_USAGES = tuple(
    (usage, make, unit, f"{usage}_unknown", f"no_{usage}", f"{usage}_expiry")
    for usage, (make, unit) in _KINDS.items()
)


def snapshot_variables(
    snapshot: BalanceSnapshot, zone: ZoneInfo, *, stale: bool | None = None
) -> dict[str, Value | bool]:
    """Prompt values and flags from a snapshot (see the module docstring).

    `stale` says whether the data is past its freshness bound (`snapshot.stale` when None).
    """
    found: dict[str, Value | bool] = {}
    money = snapshot.main_balance
    if money is None:
        found["balance_unknown"] = True
    elif money.minor >= 0:
        found["balance"] = money
    else:
        found["owed"] = Money(-money.minor, money.currency, money.exponent)
    buckets = snapshot.buckets
    for usage, make, unit, unknown_name, none_name, expiry_name in _USAGES:
        if not buckets:
            found[none_name] = True
            continue
        total = 0
        expiry: dt.datetime | None = None
        active = unknown = False
        for bucket in buckets:
            if bucket.usage_type != usage:
                continue
            if bucket.status == "unknown":
                unknown = True
            elif bucket.status == "active" and getattr(bucket.remaining, "unit", None) == unit:
                active = True
                total += getattr(bucket.remaining, "value", 0)
                until = bucket.valid_until
                if until is not None and (expiry is None or until < expiry):
                    expiry = until
        if unknown:  # a sum without the buckets we cannot read would understate it
            found[unknown_name] = True
        elif not active:
            found[none_name] = True
        else:
            found[usage] = make(total)
            if expiry is not None:
                found[expiry_name] = Date(expiry.astimezone(zone).date())
    if snapshot.stale if stale is None else stale:
        found["stale"] = True
        found["as_of"] = Clock(min(snapshot.as_of, snapshot.fetched_at).astimezone(zone))
    return found


def is_stale(snapshot: BalanceSnapshot, now: dt.datetime, fresh_for: float) -> bool:
    """Served stale by the cache, or data (upstream `as_of`, or fetch time) too old."""
    if snapshot.stale:
        return True
    as_of, fetched_at = snapshot.as_of, snapshot.fetched_at
    data_time = as_of if as_of < fetched_at else fetched_at
    bound = fresh_for if fresh_for > MIN_FRESHNESS else MIN_FRESHNESS
    return (now - data_time).total_seconds() > bound


_SETS: dict[str, VariableType] = {
    "balance": "money",
    "owed": "money",
    "balance_unknown": "flag",
    "data": "volume",
    "data_expiry": "date",
    "no_data": "flag",
    "data_unknown": "flag",
    "voice": "duration",
    "voice_expiry": "date",
    "no_voice": "flag",
    "voice_unknown": "flag",
    "sms": "int",
    "sms_expiry": "date",
    "no_sms": "flag",
    "sms_unknown": "flag",
    "stale": "flag",
    "as_of": "time",
}


@action("balance.lookup", sets=_SETS, outcomes=("not_found", "suspended", "limited"))
async def balance_lookup(ctx: ActionContext) -> str:
    """Fetch the subscriber's balances into variables.

    Sets `balance` (or `owed`, or the flag `balance_unknown`); `data`/`voice`/`sms` with
    `*_expiry`, or the flags `no_*` (none) or `*_unknown` (the answer cannot tell); and
    `stale` + `as_of` when the data is older than the freshness bound. Outcomes: `ok`,
    `not_found`, `suspended`, `limited`, `error`.

    ```yaml
    lookup_balance:
      kind: action
      action: balance.lookup
      next: show_balance
      on: { not_found: unknown_number, suspended: account_suspended, limited: rate_limited }
      on_error: system_busy
    ```
    """
    service = ctx.services.balance
    if service is None:
        return ERROR
    try:
        snapshot = await service.fetch(ctx.subscriber)
    except UpstreamNotFound:
        return "not_found"
    except RateLimited:
        return "limited"
    except UpstreamError as exc:
        log.info("balance lookup failed: %s", type(exc).__name__)
        return ERROR
    if snapshot.account_status in _SUSPENDED:
        return "suspended"
    for name in ctx.variables.keys() & _SETS.keys():  # nothing left from an earlier lookup
        del ctx.variables[name]
        ctx.values.pop(name, None)
    stale = is_stale(snapshot, ctx.now(), service.fresh_for)
    for name, value in snapshot_variables(snapshot, ctx.timezone, stale=stale).items():
        if isinstance(value, bool):
            ctx.set_flag(name, value)
        else:
            ctx.set_value(name, value)
    return OK
