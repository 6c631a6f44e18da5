"""Typed values that prompts carry: money, data volumes, durations, counts, dates, times,
and what a subscriber typed: text, digit strings, phone numbers.

Each renders per channel and language (`hotline.i18n`); inside hotline money is always
integer minor units with a currency — floats never hold money. Values cross the session
store as small JSON objects (`encode_value` / `decode_value`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "INPUT_KINDS",
    "Clock",
    "Count",
    "Date",
    "Digits",
    "Duration",
    "Money",
    "Msisdn",
    "Text",
    "Value",
    "Volume",
    "decode_value",
    "encode_value",
    "input_value",
]


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units (`exponent` decimal places), negative = owed (欠费)."""

    minor: int
    currency: str = "CNY"
    exponent: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise TypeError("Money.minor must be an int (minor units), never a float")
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise ValueError(f"Money.currency must be ISO 4217 alpha-3, got {self.currency!r}")
        if not 0 <= self.exponent <= 4:
            raise ValueError("Money.exponent must be 0..4")


@dataclass(frozen=True, slots=True)
class Volume:
    """A data volume in bytes (rendered as GB/MB)."""

    bytes: int

    def __post_init__(self) -> None:
        if self.bytes < 0:
            raise ValueError("Volume.bytes must be >= 0")


@dataclass(frozen=True, slots=True)
class Duration:
    """Talk time in seconds (rendered as minutes)."""

    seconds: int

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("Duration.seconds must be >= 0")


@dataclass(frozen=True, slots=True)
class Count:
    """A plain count (SMS messages, items)."""

    value: int


@dataclass(frozen=True, slots=True)
class Date:
    """A calendar date (expiry)."""

    value: dt.date


@dataclass(frozen=True, slots=True)
class Clock:
    """A wall-clock time of day, local to the deployment ("as of 14:05")."""

    value: dt.datetime


@dataclass(frozen=True, slots=True)
class Text:
    """Literal text from a trusted source (a catalog label, a language name)."""

    value: str


@dataclass(frozen=True, slots=True)
class Digits:
    """A digit string the subscriber typed (a card number): shown as typed, spoken digit
    by digit — never as a quantity ("一二三四", not "一千二百三十四")."""

    value: str


@dataclass(frozen=True, slots=True)
class Msisdn:
    """A phone number: shown and spoken masked (`138****8000`, "尾号八零零零")."""

    value: str


Value: TypeAlias = Money | Volume | Duration | Count | Date | Clock | Text | Digits | Msisdn

#: What an `input` state's value may be shown as (its `as:`), each a placeholder type.
INPUT_KINDS = ("text", "digits", "msisdn")
_INPUT_VALUES: dict[str, type[Text | Digits | Msisdn]] = {
    "text": Text,
    "digits": Digits,
    "msisdn": Msisdn,
}


def input_value(typed: str, kind: str) -> Value | None:
    """What a placeholder of type `kind` shows of an input state's stored string; None for
    a type no input value can feed (`flows check` rejects such a placeholder)."""
    make = _INPUT_VALUES.get(kind)
    return None if make is None else make(typed)


def encode_value(value: Value) -> dict[str, Any]:
    """Compact JSON-able form for the session store."""
    encode = _ENCODERS.get(type(value))
    if encode is None:
        raise TypeError(f"not a value: {value!r}")
    return encode(value)


# One encoder per exact type, found by a dict lookup: a `match` over nine class patterns
# tried them in turn (measured: 11 → 4.7 µs for the seven values of a balance lookup).
_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    Money: lambda v: {"t": "money", "m": v.minor, "c": v.currency, "e": v.exponent},
    Volume: lambda v: {"t": "volume", "b": v.bytes},
    Duration: lambda v: {"t": "duration", "s": v.seconds},
    Count: lambda v: {"t": "int", "v": v.value},
    Date: lambda v: {"t": "date", "v": v.value.isoformat()},
    Clock: lambda v: {"t": "time", "v": v.value.isoformat()},
    Text: lambda v: {"t": "text", "v": v.value},
    Digits: lambda v: {"t": "digits", "v": v.value},
    Msisdn: lambda v: {"t": "msisdn", "v": v.value},
}


def decode_value(data: dict[str, Any]) -> Value:
    """Inverse of `encode_value`; raises `ValueError` on anything else."""
    kind = data.get("t")
    try:
        if kind == "money":
            return Money(int(data["m"]), str(data["c"]), int(data["e"]))
        if kind == "volume":
            return Volume(int(data["b"]))
        if kind == "duration":
            return Duration(int(data["s"]))
        if kind == "int":
            return Count(int(data["v"]))
        if kind == "date":
            return Date(dt.date.fromisoformat(str(data["v"])))
        if kind == "time":
            return Clock(dt.datetime.fromisoformat(str(data["v"])))
        if kind == "text":
            return Text(str(data["v"]))
        if kind == "digits":
            return Digits(str(data["v"]))
        if kind == "msisdn":
            return Msisdn(str(data["v"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed stored value: {exc}") from exc
    raise ValueError(f"unknown stored value type {kind!r}")
