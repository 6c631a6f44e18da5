"""Values as short screen text (USSD): `12.50元`, `CNY 12.50`, `1.50GB`, `100分钟`,
typed digits as typed, phone numbers masked (`138****8000`).

Remaining quantities are floored, never rounded up: a subscriber must not be shown more
than they have.
"""

from __future__ import annotations

from hotline.base.privacy import mask_msisdn
from hotline.base.values import (
    Clock,
    Count,
    Date,
    Digits,
    Duration,
    Money,
    Msisdn,
    Text,
    Value,
    Volume,
)

__all__ = ["TextFormatter", "format_money_plain"]

_MIB = 1024 * 1024
_GIB = 1024 * _MIB
_CURRENCY_SUFFIX_ZH = {"CNY": "元"}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_money_plain(money: Money) -> str:
    """`-3.20` style: two decimals, floored toward zero from finer exponents."""
    minor = money.minor
    if money.exponent > 2:
        # Drop sub-fen digits toward zero so neither a credit nor a debt is overstated.
        scale = 10 ** (money.exponent - 2)
        minor = abs(minor) // scale * (1 if minor >= 0 else -1)
    elif money.exponent < 2:
        minor = minor * 10 ** (2 - money.exponent)
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units}.{cents:02d}"


def _volume(size: int, language: str) -> str:
    if size >= _GIB:
        hundredths = size * 100 // _GIB
        return f"{hundredths // 100}.{hundredths % 100:02d}GB"
    return f"{size // _MIB}MB"


def _is_zh(language: str) -> bool:
    return language.lower().startswith("zh")


class TextFormatter:
    """`ValueFormatter` for screens."""

    def format(self, value: Value, language: str) -> str:
        zh = _is_zh(language)
        match value:
            case Money() as money:
                plain = format_money_plain(money)
                suffix = _CURRENCY_SUFFIX_ZH.get(money.currency)
                if zh and suffix:
                    return f"{plain}{suffix}"
                return f"{money.currency} {plain}"
            case Volume(size):
                return _volume(size, language)
            case Duration(seconds):
                minutes = seconds // 60
                return f"{minutes}分钟" if zh else f"{minutes} min"
            case Count(count):
                return str(count)
            case Date(day):
                if zh:
                    return f"{day.year}年{day.month}月{day.day}日"
                return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
            case Clock(moment):
                return f"{moment.hour:02d}:{moment.minute:02d}"
            case Text(text) | Digits(text):
                return text
            case Msisdn(number):
                return mask_msisdn(number)
        raise TypeError(f"not a value: {value!r}")
