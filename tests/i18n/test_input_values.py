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
        (
            Digits("1234567812345678"),
            "zh-CN",
            "1234567812345678",
            "一二三四五六七八一二三四五六七八",
        ),
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


def test_a_key_with_ussd_and_voice_variants_is_shown_and_said_differently() -> None:
    import datetime as dt
    from pathlib import Path

    from hotline.base.values import Clock
    from hotline.flow.screen import PromptPart, Screen
    from hotline.i18n.catalog import load_catalogs
    from ivr.clips import ClipSealer
    from ivr.render import Speaker
    from ussd.render import UssdLayout

    catalogs = load_catalogs(Path(__file__).parents[2] / "prompts", ("zh-CN", "en"), "zh-CN")
    at = Clock(dt.datetime(2026, 1, 2, 14, 5))
    screen = Screen("s", "zh-CN", (PromptPart("result.as_of", {"as_of": at}),), ends=True)
    assert UssdLayout(catalogs).render(screen) == "（截至14:05的数据）"
    speaker = Speaker(catalogs=catalogs, sealer=ClipSealer("k"), voices={}, rate=150)
    said = "".join(text for text, _ in speaker.sentences(screen))
    assert said == "以上是截至十四点零五分的数据。"
    english = Screen("s", "en", screen.parts, ends=True)
    assert UssdLayout(catalogs).render(english) == "(as of 14:05)"
    assert [t.strip() for t, _ in speaker.sentences(english)] == [
        "These figures are from",
        "two oh five p m.",
    ]
    assert catalogs.placeholder_types("result.as_of") == {"as_of": "time"}


def test_an_echoed_card_number_is_spoken_digit_by_digit() -> None:
    from pathlib import Path

    from hotline.flow.screen import PromptPart
    from hotline.i18n.catalog import load_catalogs
    from ivr.clips import ClipSealer
    from ivr.render import Speaker

    catalogs = load_catalogs(Path(__file__).parents[2] / "prompts", ("zh-CN", "en"), "zh-CN")
    speaker = Speaker(catalogs=catalogs, sealer=ClipSealer("k"), voices={}, rate=150)
    part = PromptPart("topup.confirm", {"card": Digits("1234567812345678")})
    assert speaker.part_texts(part, "zh-CN") == [
        ("您输入的充值卡密码为", False),
        ("一二三四五六七八一二三四五六七八，", True),
        ("确认充值？", False),
    ]
