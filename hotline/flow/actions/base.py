"""What every action shares: its context, its spec, the registry it registers into.

An action is `async def (ctx: ActionContext) -> str` returning an outcome: `ok` goes to
the state's `next`, a name listed in the state's `on:` goes there, anything else to
`on_error`. Actions never format text; they set typed values and flags that prompt
placeholders and `when:`/`unless:` lines read. Each lives in its own module and
registers itself with `@action(name, ...)`, declaring what it takes, sets and answers,
so `hotline actions` and `flows check` can list and verify it without running it.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from hotline.base.values import Value, encode_value
from hotline.flow.services import Services

__all__ = [
    "ACTIONS",
    "ERROR",
    "OK",
    "Action",
    "ActionContext",
    "ActionRegistry",
    "ActionSpec",
    "ArgIssue",
    "ArgSpec",
    "ArgsCheck",
    "ArgsSets",
    "CheckEnv",
    "VariableType",
    "action",
]

#: Go to the state's `next`.
OK = "ok"
#: Go to the state's `on_error` (also what an action that raises or is missing gives).
ERROR = "error"

#: The type of a variable an action sets: a placeholder type (`{balance:money}`), a
#: `flag` that `when:`/`unless:` test, or `str`, a plain string the engine reads.
VariableType = Literal[
    "money", "volume", "duration", "int", "date", "time", "text", "digits", "msisdn", "flag", "str"
]
ArgType = Literal["str", "int", "bool", "language", "list", "map"]


@dataclass(slots=True)
class ActionContext:
    """What an action may see and change."""

    subscriber: str  # the canonical phone number
    language: str
    languages: tuple[str, ...]
    args: dict[str, Any]
    variables: dict[str, Any]  # session variables (encoded values, flags)
    services: Services
    timezone: ZoneInfo
    now: Callable[[], dt.datetime]  # injected clock (aware UTC), for freshness
    secrets: dict[str, str] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)  # decoded values set this step
    new_language: str | None = None
    #: The channel of the contact (`ussd`, `ivr`, `sms`, …), e.g. recorded with consent.
    channel: str = ""

    def set_value(self, name: str, value: Value) -> None:
        """Store a typed value for prompts (encoded for the session, kept decoded here)."""
        self.variables[name] = encode_value(value)
        self.values[name] = value

    def set_flag(self, name: str, on: bool = True) -> None:
        """Set (or clear) a flag that `when:`/`unless:` lines test."""
        if on:
            self.variables[name] = True
        else:
            self.variables.pop(name, None)


Action = Callable[[ActionContext], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One `args:` entry an action reads."""

    name: str
    type: ArgType
    required: bool = True
    doc: str = ""


@dataclass(frozen=True, slots=True)
class CheckEnv:
    """What `flows check` knows of the deployment when it checks a state's `args`.

    `endpoints` are the configured `http_endpoints` names (None: not known here, so an
    endpoint name is not checked).
    """

    endpoints: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class ArgIssue:
    """A problem with a state's `args`: its rule, message and path under `args`."""

    code: str
    message: str
    where: tuple[str | int, ...] = ()


#: An action's own check of a state's `args` (`flows check` prints each issue located).
ArgsCheck = Callable[[Mapping[str, Any], CheckEnv], Iterator[ArgIssue]]
#: The variables an action sets as a state's `args` declare them (`http.request`'s
#: `receive:`), beyond its fixed `sets`; {} for args it cannot read.
ArgsSets = Callable[[Mapping[str, Any]], Mapping[str, VariableType]]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What a flow author needs to know about an action, without running it.

    `sets` maps each variable the action may set to its type; `outcomes` are the names it
    may answer besides `ok` and `error` (the keys a state's `on:` may use). An action
    whose args declare more (`http.request`) gives `sets_of` and `check_args`.
    """

    name: str
    doc: str
    args: tuple[ArgSpec, ...] = ()
    sets: Mapping[str, VariableType] = field(default_factory=lambda: MappingProxyType({}))
    outcomes: tuple[str, ...] = ()
    sets_of: ArgsSets | None = None
    check_args: ArgsCheck | None = None

    def sets_for(self, args: Mapping[str, Any]) -> Mapping[str, VariableType]:
        """Every variable a state with these `args` may set, with its type."""
        if self.sets_of is None:
            return self.sets
        return {**self.sets, **self.sets_of(args)}

    @property
    def all_outcomes(self) -> tuple[str, ...]:
        """Every outcome, `ok` and `error` included."""
        return (OK, *self.outcomes, ERROR)


class ActionRegistry:
    """Name → action and its spec. `flows check` rejects names not registered here."""

    def __init__(self) -> None:
        self._actions: dict[str, tuple[Action, ActionSpec]] = {}

    def register(self, func: Action, spec: ActionSpec) -> Action:
        if spec.name in self._actions:
            raise ValueError(f"action {spec.name!r} registered twice")
        self._actions[spec.name] = (func, spec)
        return func

    def action(
        self,
        name: str,
        *,
        args: tuple[ArgSpec, ...] = (),
        sets: Mapping[str, VariableType] | None = None,
        outcomes: tuple[str, ...] = (),
        sets_of: ArgsSets | None = None,
        check_args: ArgsCheck | None = None,
    ) -> Callable[[Action], Action]:
        """Register the decorated function under `name`; its docstring is the doc."""

        def register(func: Action) -> Action:
            spec = ActionSpec(
                name=name,
                doc=inspect.cleandoc(func.__doc__ or ""),
                args=args,
                sets=MappingProxyType(dict(sets or {})),
                outcomes=outcomes,
                sets_of=sets_of,
                check_args=check_args,
            )
            return self.register(func, spec)

        return register

    def get(self, name: str) -> Action | None:
        entry = self._actions.get(name)
        return entry[0] if entry else None

    def spec(self, name: str) -> ActionSpec | None:
        entry = self._actions.get(name)
        return entry[1] if entry else None

    def specs(self) -> list[ActionSpec]:
        """Every registered action's spec, by name."""
        return [self._actions[name][1] for name in sorted(self._actions)]

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def names(self) -> list[str]:
        return sorted(self._actions)

    def doc(self, name: str) -> str:
        spec = self.spec(name)
        return spec.doc if spec else ""


#: The registry the shipped actions register into (`hotline.flow.actions` imports them).
ACTIONS = ActionRegistry()


def action(
    name: str,
    *,
    args: tuple[ArgSpec, ...] = (),
    sets: Mapping[str, VariableType] | None = None,
    outcomes: tuple[str, ...] = (),
    sets_of: ArgsSets | None = None,
    check_args: ArgsCheck | None = None,
) -> Callable[[Action], Action]:
    """`@action("balance.lookup", sets={...}, outcomes=(...))`: register into `ACTIONS`."""
    return ACTIONS.action(
        name, args=args, sets=sets, outcomes=outcomes, sets_of=sets_of, check_args=check_args
    )
