"""Encoding and segmentation of SMS texts: a table of strings and the parts they become."""

from __future__ import annotations

import gsm0338  # noqa: F401  (registers the codec)
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.i18n.gsm7 import GSM7_BASIC, GSM7_EXTENSION, is_gsm7, septets
from sms.segments import (
    UCS2_PART,
    fit,
    segment,
    units,
)
from ussd.budget import GSM7_BASIC as USSD_BASIC
from ussd.budget import GSM7_EXTENSION as USSD_EXTENSION

SIG = "【hotline】"
ZH_BALANCE = "您的话费余额为12.50元，截至10:32。" + SIG
EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair in UTF-16

# (text, encoding, units, parts) — the encoding table of the note (docs/sms.md).
TABLE = [
    ("", "gsm7", 0, 1),
    ("YE", "gsm7", 2, 1),
    ("A" * 160, "gsm7", 160, 1),
    ("A" * 161, "gsm7", 161, 2),
    ("A" * 306, "gsm7", 306, 2),
    ("A" * 307, "gsm7", 307, 3),
    ("€" * 80, "gsm7", 160, 1),
    ("€" * 81, "gsm7", 162, 2),
    ("Your balance is CNY 12.50 as of 10:32.", "gsm7", 38, 1),
    ("Your balance is CNY 12.50." + SIG, "ucs2", 35, 1),
    (ZH_BALANCE, "ucs2", 31, 1),
    ("余" * 70, "ucs2", 70, 1),
    ("余" * 71, "ucs2", 71, 2),
    ("余" * 134, "ucs2", 134, 2),
    ("余" * 135, "ucs2", 135, 3),
    (EMOJI * 35, "ucs2", 70, 1),
    (EMOJI * 36, "ucs2", 72, 2),
    ("é" * 160, "gsm7", 160, 1),
    ("ê", "ucs2", 1, 1),
]


@pytest.mark.parametrize(("text", "encoding", "size", "parts"), TABLE)
def test_encoding_table(text: str, encoding: str, size: int, parts: int) -> None:
    segments = segment(text)
    assert segments.encoding == encoding
    assert units(text) == size
    assert segments.count == parts
    assert segments.text == text


def test_gsm_parts_take_153_septets_and_never_split_an_escape() -> None:
    text = "A" * 152 + "€" + "B" * 10
    segments = segment(text)
    assert segments.encoding == "gsm7"
    assert segments.parts == ("A" * 152, "€" + "B" * 10)
    assert all(septets(part) <= 153 for part in segments.parts)


def test_ucs2_parts_take_67_units_and_never_split_a_surrogate_pair() -> None:
    text = "余" * 66 + EMOJI + "额" * 5  # 73 units: two parts, the pair would be 67-68
    segments = segment(text)
    assert segments.parts == ("余" * 66, EMOJI + "额" * 5)
    for part in segments.parts:
        assert len(part.encode("utf-16-be")) // 2 <= UCS2_PART
        part.encode("utf-16-be")  # a lone surrogate would raise


@given(st.text(max_size=600))
def test_parts_round_trip_and_fit_their_budget(text: str) -> None:
    segments = segment(text)
    assert "".join(segments.parts) == text
    if segments.count > 1:
        for part in segments.parts:
            assert units(part, segments.encoding) <= (153 if segments.encoding == "gsm7" else 67)
            part.encode("utf-16-be")


def test_the_alphabet_matches_the_gsm0338_codec_and_ussd() -> None:
    assert (GSM7_BASIC, GSM7_EXTENSION) == (USSD_BASIC, USSD_EXTENSION)
    for char in GSM7_BASIC:
        assert len(char.encode("gsm03.38")) == 1, char
    for char in GSM7_EXTENSION:
        assert len(char.encode("gsm03.38")) == 2, char
    assert not is_gsm7("余")


@pytest.mark.parametrize(
    ("body", "max_parts", "expected_parts"),
    [
        ("余" * 300, 3, 3),
        ("余" * 300, 1, 1),
        ("A" * 1000, 3, 3),
        ("A" * 1000, 1, 1),
        ("€" * 400, 3, 3),
    ],
)
def test_fit_keeps_the_signature_within_the_part_cap(
    body: str, max_parts: int, expected_parts: int
) -> None:
    text = fit(body, SIG, max_parts)
    assert text.endswith("…" + SIG)
    assert segment(text).count == expected_parts


def test_fit_leaves_short_texts_alone() -> None:
    assert fit("您的话费余额为12.50元。", SIG, 3) == "您的话费余额为12.50元。" + SIG
