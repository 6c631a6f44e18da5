"""Registered flow actions: `kind: action` states name one of these.

An action is `async def (ctx: ActionContext) -> str` returning an outcome name: `ok`
goes to the state's `next`, a name listed in the state's `on` goes there, anything else
to `on_error`. Actions never format text; they put typed values into session variables
that prompt placeholders read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hotline.base.errors import RateLimited, UpstreamError, UpstreamNotFound
from hotline.base.values import Clock, Count, Date, Duration, Money, Value, Volume, encode_value

if TYPE_CHECKING:
    from hotline.balance.model import BalanceSnapshot, Bucket
    from hotline.flow.services import Services

__all__ = [
    "ACTIONS",
    "ActionContext",
    "ActionRegistry",
    "SnapshotVariables",
    "snapshot_variables",
]

log = logging.getLogger(__name__)

OK = "ok"
ERROR = "error"


@dataclass(slots=True)
class ActionContext:
    """What an action may see and change."""

    subscriber: str
    language: str
    languages: tuple[str, ...]
    args: dict[str, Any]
    variables: dict[str, Any]
    services: Services
    timezone: ZoneInfo
    secrets: dict[str, str] = field(default_factory=dict)
    new_language: str | None = None
    values: dict[str, Value] = field(default_factory=dict)
    snapshots: SnapshotVariables | None = None  # the engine's memo; None computes afresh

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


Encoded = Mapping[str, Any]


def _as_variables(found: dict[str, Value | bool]) -> tuple[Encoded, Mapping[str, Value]]:
    """Session variables (values encoded, flags as is) and the typed values among them."""
    variables: dict[str, Any] = {}
    values: dict[str, Value] = {}
    for name, value in found.items():
        if isinstance(value, bool):
            variables[name] = value
        else:
            variables[name] = encode_value(value)
            values[name] = value
    return variables, values


class SnapshotVariables:
    """`snapshot_variables` + encoding, remembered per snapshot object.

    A warm balance cache hands every step of a subscriber the very same frozen
    snapshot for `fresh_ttl` seconds, so the conversion runs once per snapshot rather
    than once per step (measured: ~9 µs of a ~40 µs balance step). Entries hold their
    snapshot, so an id is never mistaken for another object's. The encoded variables
    are shared by every session that copies them in: nothing mutates a stored value.
    """

    def __init__(self, zone: ZoneInfo, size: int = 1024) -> None:
        self.zone = zone
        self._size = size
        self._memo: dict[int, tuple[BalanceSnapshot, Encoded, Mapping[str, Value]]] = {}

    def __call__(self, snapshot: BalanceSnapshot) -> tuple[Encoded, Mapping[str, Value]]:
        entry = self._memo.get(id(snapshot))
        if entry is not None and entry[0] is snapshot:
            return entry[1], entry[2]
        variables, values = _as_variables(snapshot_variables(snapshot, self.zone))
        if len(self._memo) >= self._size:
            self._memo.clear()  # snapshots a warm cache no longer serves; start afresh
        self._memo[id(snapshot)] = (snapshot, variables, values)
        return variables, values


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
    balance = ctx.services.balance
    if balance is None:
        return ERROR
    try:
        snapshot = await balance.fetch(ctx.subscriber)
    except UpstreamNotFound:
        return "not_found"
    except RateLimited:
        return "limited"
    except UpstreamError as exc:
        log.info("balance lookup failed: %s", type(exc).__name__)
        return ERROR
    if snapshot.account_status in _SUSPENDED:
        return "suspended"
    memo = ctx.snapshots
    if memo is not None and memo.zone == ctx.timezone:
        variables, values = memo(snapshot)
    else:
        variables, values = _as_variables(snapshot_variables(snapshot, ctx.timezone))
    ctx.variables.update(variables)
    ctx.values.update(values)
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


@ACTIONS.action("call.agent_available")
async def agent_available(ctx: ActionContext) -> str:
    """Set `agent` when calls can be handed to an agent (`ivr.agent_number` is set).

    A menu option with `when: agent` is then offered only where it works.

    ```yaml
    voice_start:
      kind: action
      action: call.agent_available
      next: main
      on_error: main
    ```
    """
    if ctx.services.agent_number:
        ctx.variables["agent"] = True
    else:
        ctx.variables.pop("agent", None)
    return OK


@ACTIONS.action("call.transfer")
async def transfer(ctx: ActionContext) -> str:
    """Hand the call to an agent after the next end state is spoken.

    Sets `transfer_to` (the agent number); the end state reached next is spoken and
    the call is then dialled through. Outcomes: `ok`, `unavailable` (no agent number).

    ```yaml
    agent:
      kind: action
      action: call.transfer
      next: transferring       # kind: end, prompt: voice.transfer
      on: { unavailable: main }
      on_error: system_busy
    ```
    """
    number = ctx.services.agent_number
    if not number:
        return "unavailable"
    ctx.variables["transfer_to"] = number
    return OK
