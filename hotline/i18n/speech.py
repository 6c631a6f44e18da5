"""Values as words for the speech engine: `十二元五角`, `twelve yuan and fifty fen`.

eSpeak NG misreads digit strings (1.51 drops the decimal point, English reads
"12.50" as "twelve point five zero"), so every value is turned into words before TTS.

Chinese (spoken, not the financial 壹贰叁 form) is written here: no library has a
spoken 元/角/分 mode with 两 and 零 rules (`cn2an` gives 十二点五 or 壹拾贰元伍角).
English cardinals, ordinals and years come from `num2words`.

Decisions (docs/ivr.md):
- Remaining quantities are floored like on screens; money below the minor unit is
  dropped toward zero so neither credit nor debt is overstated.
- A negative amount is a debt: zh `欠费十二元五角`, en `minus twelve yuan and fifty fen`.
- English money joins units with "and": `twelve yuan and fifty fen`.
- 两 is used where Mandarin speakers say it: a quantity of exactly 2 before a measure
  word (两元, 两角, 两分钟, 两条) and 2 in the 百/千 places or before 万/亿 (两千, 两万);
  二 stays in 十二, 二十 and as a last digit (一百零二).
- Typed digits (`{card:digits}`) are read digit by digit; a phone number
  (`{number:msisdn}`) is masked as on screens, so only its last four digits are said:
  zh `尾号八零零零`, en `ending in eight zero zero zero`.
- Dates: zh `二零二六年十二月三十一日` (years digit by digit, as spoken),
  en `the thirty-first of December twenty twenty-six`. Times: zh `十四点零五分`,
  en `two oh five p m`.
"""

from __future__ import annotations

import datetime as dt

from num2words import num2words

from hotline.base.privacy import ascii_digits, mask_msisdn
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

__all__ = ["SpeechFormatter", "spoken_digits", "spoken_key", "zh_number"]

_MIB = 1024 * 1024
_GIB = 1024 * _MIB
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_SMALL_UNITS = ("", "十", "百", "千")
_ZH_BIG_UNITS = ("", "万", "亿", "万亿")
_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip

# zh: (major unit, minor unit; None = 角/分 style); en: (major sg, major pl, minor sg, minor pl).
_ZH_CURRENCY: dict[str, tuple[str, str | None]] = {
    "CNY": ("元", None),
    "HKD": ("港元", None),
    "USD": ("美元", "美分"),
    "EUR": ("欧元", "欧分"),
    "KES": ("肯尼亚先令", "分"),
    "NGN": ("奈拉", "考包"),
}
_EN_CURRENCY: dict[str, tuple[str, str, str, str]] = {
    "CNY": ("yuan", "yuan", "fen", "fen"),
    "HKD": ("Hong Kong dollar", "Hong Kong dollars", "cent", "cents"),
    "USD": ("dollar", "dollars", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "KES": ("shilling", "shillings", "cent", "cents"),
    "NGN": ("naira", "naira", "kobo", "kobo"),
}
_KEYS_ZH = {"*": "星号", "#": "井号"}
_KEYS_EN = {"*": "star", "#": "pound"}


def _is_zh(language: str) -> bool:
    return language.lower().startswith("zh")


def _zh_group(group: int, liang_lead: bool) -> str:
    """0 < group < 10000 in words; one 零 for any run of inner zeros."""
    digits = [group // 1000 % 10, group // 100 % 10, group // 10 % 10, group % 10]
    out: list[str] = []
    pending_zero = False
    started = False
    for place, digit in zip((3, 2, 1, 0), digits, strict=True):
        if digit == 0:
            pending_zero = started
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        started = True
        if digit == 2 and place in (2, 3) and liang_lead:
            out.append("两")
        else:
            out.append(_ZH_DIGITS[digit])
        out.append(_ZH_SMALL_UNITS[place])
    return "".join(out)


def zh_number(n: int, measure: bool = False) -> str:
    """A non-negative integer in spoken Mandarin: 10005 → 一万零五, 12 → 十二.

    `measure=True` means a measure word follows (元, 条, 分钟), so a bare 2 is 两.
    """
    if n < 0:
        raise ValueError("zh_number takes n >= 0")
    if n == 0:
        return "零"
    if n == 2 and measure:
        return "两"
    groups: list[int] = []
    rest = n
    while rest:
        groups.append(rest % 10000)
        rest //= 10000
    if len(groups) > len(_ZH_BIG_UNITS):
        return "".join(_ZH_DIGITS[int(c)] for c in str(n))
    out: list[str] = []
    need_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            need_zero = bool(out)
            continue
        if out and (need_zero or group < 1000):
            out.append("零")
        need_zero = False
        if group == 2 and index > 0:
            out.append("两")
        else:
            out.append(_zh_group(group, liang_lead=True))
        out.append(_ZH_BIG_UNITS[index])
    text = "".join(out)
    # 一十二 → 十二 only at the very start (一百一十 keeps its 一).
    if text.startswith("一十"):
        text = text[1:]
    return text


def _en_number(n: int) -> str:
    return str(num2words(n, lang="en")).replace(",", "")


def _minor_units(money: Money, places: int) -> tuple[int, int]:
    """(major, minor) non-negative, with the minor part in `places` digits, floored."""
    minor = abs(money.minor)
    if money.exponent > places:
        minor //= 10 ** (money.exponent - places)
    elif money.exponent < places:
        minor *= 10 ** (places - money.exponent)
    return divmod(minor, 10**places) if places else (minor, 0)


def _zh_money(money: Money) -> str:
    known = _ZH_CURRENCY.get(money.currency)
    major_unit, minor_unit = known or (money.currency, None)
    major, minor = _minor_units(money, 2 if known else 0)
    parts: list[str] = []
    if major:
        parts.append(zh_number(major, measure=True) + major_unit)
    if minor and minor_unit is None:
        jiao, fen = divmod(minor, 10)
        if jiao:
            parts.append(zh_number(jiao, measure=True) + "角")
        if fen:
            parts.append(("零" if major and not jiao else "") + zh_number(fen, measure=True) + "分")
    elif minor and minor_unit is not None:
        lead = "零" if major and minor < 10 else ""
        parts.append(lead + zh_number(minor, measure=True) + minor_unit)
    if not parts:
        parts.append("零" + major_unit)
    text = "".join(parts)
    return ("欠费" + text) if money.minor < 0 and (major or minor) else text


def _en_money(money: Money) -> str:
    names = _EN_CURRENCY.get(money.currency)
    if names is None:
        major_sg = major_pl = " ".join(money.currency)
        places = 0
    else:
        major_sg, major_pl, minor_sg, minor_pl = names
        places = 2
    major, minor = _minor_units(money, places)
    parts: list[str] = []
    if major or not minor:
        parts.append(f"{_en_number(major)} {major_sg if major == 1 else major_pl}")
    if minor:
        parts.append(f"{_en_number(minor)} {minor_sg if minor == 1 else minor_pl}")
    text = " and ".join(parts)
    return ("minus " + text) if money.minor < 0 and (major or minor) else text


def _zh_decimal(hundredths: int) -> str:
    """12.50 (as 1250) → 十二点五; trailing zeros dropped."""
    whole, frac = divmod(hundredths, 100)
    digits = f"{frac:02d}".rstrip("0")
    if not digits:
        return zh_number(whole, measure=True)
    return zh_number(whole) + "点" + "".join(_ZH_DIGITS[int(d)] for d in digits)


def _en_decimal(hundredths: int) -> str:
    whole, frac = divmod(hundredths, 100)
    digits = f"{frac:02d}".rstrip("0")
    if not digits:
        return _en_number(whole)
    return _en_number(whole) + " point " + " ".join(_en_number(int(d)) for d in digits)


def _volume(size: int, zh: bool) -> str:
    if size >= _GIB:
        hundredths = size * 100 // _GIB
        if zh:
            return _zh_decimal(hundredths) + "GB"
        unit = "gigabyte" if hundredths == 100 else "gigabytes"
        return f"{_en_decimal(hundredths)} {unit}"
    megabytes = size // _MIB
    if zh:
        return zh_number(megabytes, measure=True) + "MB"
    return f"{_en_number(megabytes)} {'megabyte' if megabytes == 1 else 'megabytes'}"


def _date(day: dt.date, zh: bool) -> str:
    if zh:
        year = "".join(_ZH_DIGITS[int(c)] for c in f"{day.year:04d}")
        return f"{year}年{zh_number(day.month)}月{zh_number(day.day)}日"
    ordinal = num2words(day.day, lang="en", to="ordinal")
    year = num2words(day.year, lang="en", to="year")
    return f"the {ordinal} of {_MONTHS_EN[day.month - 1]} {year}"


def _clock(moment: dt.datetime, zh: bool) -> str:
    hour, minute = moment.hour, moment.minute
    if zh:
        text = zh_number(hour, measure=True) + "点"
        if minute:
            text += ("零" if minute < 10 else "") + zh_number(minute) + "分"
        return text
    suffix = "a m" if hour < 12 else "p m"
    h12 = hour % 12 or 12
    if minute == 0:
        return f"{_en_number(h12)} {suffix}"
    spoken_minute = ("oh " if minute < 10 else "") + _en_number(minute)
    return f"{_en_number(h12)} {spoken_minute} {suffix}"


def spoken_key(key: str, language: str) -> str:
    """A keypad key as a word: `1` → 一 / one, `*` → 星号 / star."""
    zh = _is_zh(language)
    words: list[str] = []
    for char in key:
        if "0" <= char <= "9":  # not isdigit(): it admits ², which int() refuses
            words.append(_ZH_DIGITS[int(char)] if zh else _en_number(int(char)))
        else:
            words.append((_KEYS_ZH if zh else _KEYS_EN).get(char, char))
    return ("" if zh else " ").join(words)


def spoken_digits(digits: str, language: str) -> str:
    """A typed digit string digit by digit: `1234` → 一二三四 / one two three four."""
    return spoken_key(ascii_digits(digits), language)


def _spoken_msisdn(number: str, zh: bool, language: str) -> str:
    """A masked phone number as heard: only its last four digits (尾号八零零零)."""
    masked = mask_msisdn(number)
    if "*" not in masked or masked.startswith("*"):
        return "隐藏的号码" if zh else "a hidden number"
    tail = spoken_digits(masked[-4:], language)
    return f"尾号{tail}" if zh else f"ending in {tail}"


class SpeechFormatter:
    """`ValueFormatter` for the voice channel: every value as words for its language."""

    def format(self, value: Value, language: str) -> str:
        zh = _is_zh(language)
        match value:
            case Money() as money:
                return _zh_money(money) if zh else _en_money(money)
            case Volume(size):
                return _volume(size, zh)
            case Duration(seconds):
                minutes = seconds // 60
                if zh:
                    return zh_number(minutes, measure=True) + "分钟"
                return f"{_en_number(minutes)} {'minute' if minutes == 1 else 'minutes'}"
            case Count(count):
                if zh:
                    return ("负" if count < 0 else "") + zh_number(abs(count), measure=True)
                return ("minus " if count < 0 else "") + _en_number(abs(count))
            case Date(day):
                return _date(day, zh)
            case Clock(moment):
                return _clock(moment, zh)
            case Text(text):
                return text
            case Digits(digits):
                return spoken_digits(digits, language)
            case Msisdn(number):
                return _spoken_msisdn(number, zh, language)
        raise TypeError(f"not a value: {value!r}")
