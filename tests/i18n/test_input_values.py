"""Values a subscriber typed, as screens show them and voices say them (pure)."""

from __future__ import annotations

import pytest

from hotline.base.values import Digits, Msisdn, Text, decode_value, encode_value, input_value
from hotline.i18n.speech import SpeechFormatter
from hotline.i18n.text import TextFormatter

TEXT = TextFormatter()
SPEECH = SpeechFormatter()


@pytest.mark.parametrize(
    ("value", "lang", "screen", "spoken"),
    [
        (Digits("1234567812345678"), "zh-CN", "1234567812345678", "一二三四五六七八一二三四五六七八"),
        (Digits("2026"), "en", "2026", "two zero two six"),
        (Msisdn("13800138000"), "zh-CN", "138****8000", "尾号八零零零"),
        (Msisdn("+8613800138000"), "en", "138****8000", "ending in eight zero zero zero"),
        (Msisdn("12345"), "zh-CN", "*****", "隐藏的号码"),
        (Text("ab12"), "en", "ab12", "ab12"),
    ],
)
def test_typed_values_on_screen_and_in_speech(
    value: Digits | Msisdn | Text, lang: str, screen: str, spoken: str
) -> None:
    assert TEXT.format(value, lang) == screen
    assert SPEECH.format(value, lang) == spoken
    assert decode_value(encode_value(value)) == value


def test_an_input_string_shows_as_its_placeholder_type() -> None:
    assert input_value("13800138000", "msisdn") == Msisdn("13800138000")
    assert input_value("42", "digits") == Digits("42")
    assert input_value("42", "text") == Text("42")
    assert input_value("42", "money") is None  # no input feeds money: flows check says so
