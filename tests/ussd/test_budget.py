"""GSM-7 / UCS-2 budget: table tests plus a cross-check against the gsm0338 codec."""

from __future__ import annotations

import gsm0338  # type: ignore[import-untyped]  # noqa: F401  (registers the "gsm03.38" codec)
import pytest

from ussd.budget import GSM7_BASIC, GSM7_EXTENSION, Limits, cost, encoding_of, fits


@pytest.mark.parametrize(
    ("text", "encoding", "units"),
    [
        ("", "gsm7", 0),
        ("Balance service", "gsm7", 15),
        ("1.Main balance\n2.Data", "gsm7", 21),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", "gsm7", 42),
        ("€", "gsm7", 2),
        ("{x}", "gsm7", 5),
        ("a^b|c\\d~[e]", "gsm7", 17),
        ("\f", "gsm7", 2),
        ("话费余额", "ucs2", 4),
        ("CON 1.话费余额", "ucs2", 10),
        ("€中", "ucs2", 2),  # in UCS-2 the euro sign is one unit, not two septets
        ("ê", "ucs2", 1),  # not in the GSM alphabet although Latin
        ("`", "ucs2", 1),
        ("“quoted”", "ucs2", 8),
        ("ok 😀", "ucs2", 5),  # astral: a surrogate pair, two units
        ("\x1b", "ucs2", 1),  # ESC is the escape, not a character
    ],
)
def test_encoding_and_cost(text: str, encoding: str, units: int) -> None:
    assert encoding_of(text) == encoding
    assert cost(text) == units


def test_alphabet_sizes() -> None:
    assert len(GSM7_BASIC) == 127  # 128 code points less ESC
    assert len(set(GSM7_BASIC)) == 127
    assert len(GSM7_EXTENSION) == 10


def test_every_bmp_character_agrees_with_the_gsm0338_codec() -> None:
    """An independent implementation of TS 23.038 gives the same encoding and cost."""
    for point in range(0x10000):
        if 0xD800 <= point <= 0xDFFF or point == 0x1B:
            continue
        char = chr(point)
        try:
            septets = len(char.encode("gsm03.38"))
        except UnicodeEncodeError:
            septets = None
        if septets is None:
            assert encoding_of(char) == "ucs2", hex(point)
            assert cost(char) == 1
        else:
            assert encoding_of(char) == "gsm7", hex(point)
            assert cost(char) == septets, hex(point)


def test_mixed_text_cost_matches_codec() -> None:
    text = "Data left: 1.50GB [€5 {bonus}] ~ok|\\ ^"
    assert cost(text) == len(text.encode("gsm03.38"))


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("a" * 182, True),
        ("a" * 183, False),
        ("a" * 180 + "€", True),
        ("a" * 181 + "€", False),
        ("中" * 80, True),
        ("中" * 81, False),
        ("a" * 79 + "中", True),  # one Chinese character: the whole string is UCS-2
        ("a" * 80 + "中", False),
        ("€" * 80, True),
        ("€" * 91, True),
        ("€" * 92, False),
        ("😀" * 40, True),
        ("😀" * 40 + "a", False),
    ],
)
def test_fits_default_limits(text: str, ok: bool) -> None:
    assert fits(text, Limits()) is ok


def test_fits_custom_limits() -> None:
    limits = Limits(gsm7=160, ucs2=70)
    assert fits("a" * 160, limits)
    assert not fits("a" * 161, limits)
    assert fits("中" * 70, limits)
    assert not fits("中" * 71, limits)
    assert limits.less(4) == Limits(156, 66)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(gsm7=0)
