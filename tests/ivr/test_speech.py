"""Spoken values: table tests for zh-CN and en (hotline/i18n/speech.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from hotline.base.values import Clock, Count, Date, Duration, Money, Text, Value, Volume
from hotline.i18n.speech import SpeechFormatter, spoken_key, zh_number

FMT = SpeechFormatter()
MIB = 1024 * 1024
GIB = 1024 * MIB


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "零"),
        (1, "一"),
        (2, "二"),
        (10, "十"),
        (12, "十二"),
        (20, "二十"),
        (22, "二十二"),
        (100, "一百"),
        (102, "一百零二"),
        (110, "一百一十"),
        (200, "两百"),
        (1005, "一千零五"),
        (1050, "一千零五十"),
        (2222, "两千两百二十二"),
        (10000, "一万"),
        (10005, "一万零五"),
        (12000, "一万两千"),
        (20000, "两万"),
        (100000, "十万"),
        (100010, "十万零一十"),
        (110000, "十一万"),
        (1020000, "一百零二万"),
        (100000000, "一亿"),
        (100000001, "一亿零一"),
        (100010000, "一亿零一万"),
        (200000000, "两亿"),
    ],
)
def test_zh_number(n: int, words: str) -> None:
    assert zh_number(n) == words


def test_zh_number_two_before_measure_word() -> None:
    assert zh_number(2, measure=True) == "两"
    assert zh_number(12, measure=True) == "十二"


@pytest.mark.parametrize(
    ("minor", "zh", "en"),
    [
        (0, "零元", "zero yuan"),
        (5, "五分", "five fen"),
        (50, "五角", "fifty fen"),
        (1, "一分", "one fen"),
        (2, "两分", "two fen"),
        (100, "一元", "one yuan"),
        (200, "两元", "two yuan"),
        (1000, "十元", "ten yuan"),
        (1250, "十二元五角", "twelve yuan and fifty fen"),
        (1205, "十二元零五分", "twelve yuan and five fen"),
        (1255, "十二元五角五分", "twelve yuan and fifty-five fen"),
        (10000, "一百元", "one hundred yuan"),
        (10000001, "十万元零一分", "one hundred thousand yuan and one fen"),
        (125000, "一千两百五十元", "one thousand two hundred and fifty yuan"),
        (-1250, "欠费十二元五角", "minus twelve yuan and fifty fen"),
        (-5, "欠费五分", "minus five fen"),
        (-10000001, "欠费十万元零一分", "minus one hundred thousand yuan and one fen"),
    ],
)
def test_money_cny(minor: int, zh: str, en: str) -> None:
    money = Money(minor, "CNY", 2)
    assert FMT.format(money, "zh-CN") == zh
    assert FMT.format(money, "en") == en


@pytest.mark.parametrize(
    ("money", "zh", "en"),
    [
        (Money(12505, "CNY", 3), "十二元五角", "twelve yuan and fifty fen"),  # sub-fen floored
        (Money(-9, "CNY", 3), "零元", "zero yuan"),  # under one fen owed: nothing to say
        (Money(125, "CNY", 1), "十二元五角", "twelve yuan and fifty fen"),
        (Money(12, "CNY", 0), "十二元", "twelve yuan"),
        (Money(1, "USD", 2), "一美分", "one cent"),
        (Money(101, "USD", 2), "一美元零一美分", "one dollar and one cent"),
        (Money(500, "JPY", 0), "五百JPY", "five hundred J P Y"),
    ],
)
def test_money_other_exponents_and_currencies(money: Money, zh: str, en: str) -> None:
    assert FMT.format(money, "zh-CN") == zh
    assert FMT.format(money, "en") == en


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        (Volume(0), "零MB", "zero megabytes"),
        (Volume(MIB), "一MB", "one megabyte"),
        (Volume(512 * MIB + 5), "五百一十二MB", "five hundred and twelve megabytes"),
        (Volume(2 * MIB), "两MB", "two megabytes"),
        (Volume(GIB), "一GB", "one gigabyte"),
        (Volume(2 * GIB), "两GB", "two gigabytes"),
        (Volume(GIB + GIB // 2), "一点五GB", "one point five gigabytes"),
        (Volume(GIB * 1999 // 1000), "一点九九GB", "one point nine nine gigabytes"),
        (Duration(0), "零分钟", "zero minutes"),
        (Duration(59), "零分钟", "zero minutes"),
        (Duration(60), "一分钟", "one minute"),
        (Duration(120), "两分钟", "two minutes"),
        (Duration(90 * 60 + 30), "九十分钟", "ninety minutes"),
        (Count(0), "零", "zero"),
        (Count(2), "两", "two"),
        (Count(100), "一百", "one hundred"),
        (Count(-3), "负三", "minus three"),
        (
            Date(dt.date(2026, 12, 31)),
            "二零二六年十二月三十一日",
            "the thirty-first of December twenty twenty-six",
        ),
        (Date(dt.date(2000, 2, 1)), "二零零零年二月一日", "the first of February two thousand"),
        (Clock(dt.datetime(2026, 1, 1, 14, 5)), "十四点零五分", "two oh five p m"),
        (Clock(dt.datetime(2026, 1, 1, 2, 30)), "两点三十分", "two thirty a m"),
        (Clock(dt.datetime(2026, 1, 1, 0, 0)), "零点", "twelve a m"),
        (Clock(dt.datetime(2026, 1, 1, 12, 0)), "十二点", "twelve p m"),
        (Text("话费余额"), "话费余额", "话费余额"),
    ],
)
def test_other_values(value: Value, zh: str, en: str) -> None:
    assert FMT.format(value, "zh-CN") == zh
    assert FMT.format(value, "en") == en


def test_no_digits_ever_spoken() -> None:
    values: list[Value] = [Money(m, "CNY", 2) for m in (0, 5, 1005, 99999999, -1)] + [
        Volume(7 * GIB // 3),
        Duration(3601),
        Count(42),
        Date(dt.date(2031, 5, 9)),
    ]
    for value in values:
        for language in ("zh-CN", "en"):
            spoken = FMT.format(value, language)
            assert not any(c.isdigit() for c in spoken), (value, language, spoken)


@pytest.mark.parametrize(
    ("key", "zh", "en"),
    [("1", "一", "one"), ("0", "零", "zero"), ("*", "星号", "star"), ("98", "九八", "nine eight")],
)
def test_spoken_key(key: str, zh: str, en: str) -> None:
    assert spoken_key(key, "zh-CN") == zh
    assert spoken_key(key, "en") == en
