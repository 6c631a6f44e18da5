"""Registered flow actions: `kind: action` states name one of these.

An action is `async def (ctx: ActionContext) -> str` returning an outcome name: `ok`
goes to the state's `next`, a name listed in the state's `on` goes there, anything else
to `on_error`. Actions never format text; they put typed values into session variables
that prompt placeholders read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hotline.errors import RateLimited, UpstreamError, UpstreamNotFound
from hotline.values import Clock, Count, Date, Duration, Money, Value, Volume, encode_value

if TYPE_CHECKING:
    from hotline.balance.model import BalanceSnapshot, Bucket
    from hotline.balance.provider import BalanceProvider

__all__ = ["ACTIONS", "ActionContext", "ActionRegistry", "snapshot_variables"]

log = logging.getLogger(__name__)

OK = "ok"
ERROR = "error"


@dataclass(slots=True)
class ActionContext:
    """What an action may see and change."""

    msisdn: str
    language: str
    languages: tuple[str, ...]
    args: dict[str, Any]
    variables: dict[str, Any]
    balance: BalanceProvider | None
    timezone: ZoneInfo
    secrets: dict[str, str] = field(default_factory=dict)
    new_language: str | None = None
    values: dict[str, Value] = field(default_factory=dict)

    def set_value(self, name: str, value: Value) -> None:
        """Store a typed value for prompts (encoded for the session, kept decoded here)."""
        self.variables[name] = encode_value(value)
        self.values[name] = value


Action = Callable[[ActionContext], Awaitable[str]]


class ActionRegistry:
    """Name → action. `flows check` rejects names not registered here."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}

    def action(self, name: str) -> Callable[[Action], Action]:
        def register(func: Action) -> Action:
            if name in self._actions:
                raise ValueError(f"action {name!r} registered twice")
            self._actions[name] = func
            return func

        return register

    def get(self, name: str) -> Action | None:
        return self._actions.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def names(self) -> list[str]:
        return sorted(self._actions)

    def doc(self, name: str) -> str:
        func = self._actions.get(name)
        return (func.__doc__ or "").strip() if func else ""


ACTIONS = ActionRegistry()

_SUSPENDED = frozenset({"suspended", "barred", "inactive"})


def _sum_bucket(buckets: Iterable[Bucket]) -> tuple[int, dt.datetime | None]:
    total = 0
    expiry: dt.datetime | None = None
    for bucket in buckets:
        remaining = bucket.remaining
        total += getattr(remaining, "value", 0)
        if bucket.valid_until is not None and (expiry is None or bucket.valid_until < expiry):
            expiry = bucket.valid_until
    return total, expiry


def snapshot_variables(snapshot: BalanceSnapshot, zone: ZoneInfo) -> dict[str, Value | bool]:
    """Prompt values from a snapshot: balance/owed, data/voice/sms with expiry, staleness."""
    found: dict[str, Value | bool] = {}
    money = snapshot.main_balance
    if money is not None:
        if money.minor >= 0:
            found["balance"] = money
        else:
            found["owed"] = Money(-money.minor, money.currency, money.exponent)
    kinds: dict[str, tuple[Callable[[int], Value], str]] = {
        "data": (Volume, "byte"),
        "voice": (Duration, "second"),
        "sms": (Count, "message"),
    }
    for usage, (make, unit) in kinds.items():
        buckets = [
            b
            for b in snapshot.buckets
            if b.usage_type == usage
            and b.status == "active"
            and getattr(b.remaining, "unit", None) == unit
        ]
        if not buckets:
            continue
        total, expiry = _sum_bucket(buckets)
        found[usage] = make(total)
        if expiry is not None:
            found[f"{usage}_expiry"] = Date(expiry.astimezone(zone).date())
    if snapshot.stale:
        found["stale"] = True
        found["as_of"] = Clock(snapshot.as_of.astimezone(zone))
    return found


@ACTIONS.action("balance.lookup")
async def balance_lookup(ctx: ActionContext) -> str:
    """Fetch the subscriber's balances into variables.

    Sets `balance` (or `owed`), `data`/`voice`/`sms` with `*_expiry`, and `stale` +
    `as_of` when the answer is older than the freshness bound. Outcomes: `ok`,
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
    if ctx.balance is None:
        return ERROR
    try:
        snapshot = await ctx.balance.fetch(ctx.msisdn)
    except UpstreamNotFound:
        return "not_found"
    except RateLimited:
        return "limited"
    except UpstreamError as exc:
        log.info("balance lookup failed: %s", type(exc).__name__)
        return ERROR
    if snapshot.account_status in _SUSPENDED:
        return "suspended"
    for name, value in snapshot_variables(snapshot, ctx.timezone).items():
        if isinstance(value, bool):
            ctx.variables[name] = value
        else:
            ctx.set_value(name, value)
    return OK


@ACTIONS.action("subscriber.set_language")
async def set_language(ctx: ActionContext) -> str:
    """Switch the conversation language and remember it for this number.

    ```yaml
    set_english:
      kind: action
      action: subscriber.set_language
      args: { language: en }
      next: main
      on_error: main
    ```
    """
    language = ctx.args.get("language")
    if not isinstance(language, str) or language not in ctx.languages:
        return ERROR
    ctx.new_language = language
    return OK
