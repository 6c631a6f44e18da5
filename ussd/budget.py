"""How much of a USSD string a text costs: GSM-7 septets or UCS-2 code units.

A USSD string is at most 160 octets (3GPP TS 29.002 `maxUSSD-StringLength`): 182
characters of the GSM 03.38 default alphabet (TS 23.038 §6.1.2.3), where a character of
the extension table costs two (ESC + character), or 80 UTF-16 code units as soon as one
character is outside the alphabet (any Chinese character switches the whole string).

Hand-written rather than taken from the `gsm0338` codec (which the tests use as an
independent cross-check): the codec encodes character by character in Python and signals
"not GSM" by exception, while `hotline.i18n.gsm7` (the alphabet, shared with the SMS
channel) answers with two precompiled regular expressions, which matters because every
reply on the hot path is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hotline.i18n.gsm7 import GSM7_BASIC, GSM7_EXTENSION, is_gsm7, septets

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Encoding",
    "Limits",
    "cost",
    "encoding_of",
    "fits",
]

Encoding = Literal["gsm7", "ucs2"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The budget of one USSD string: GSM-7 septets and UCS-2 code units."""

    gsm7: int = 182
    ucs2: int = 80

    def __post_init__(self) -> None:
        if self.gsm7 < 1 or self.ucs2 < 1:
            raise ValueError("USSD limits must be positive")

    def of(self, encoding: Encoding) -> int:
        return self.gsm7 if encoding == "gsm7" else self.ucs2

    def less(self, reserved: int) -> Limits:
        """These limits with `reserved` characters kept back (e.g. for `CON `)."""
        return Limits(self.gsm7 - reserved, self.ucs2 - reserved)


def encoding_of(text: str) -> Encoding:
    """`gsm7` if every character is in the GSM 03.38 alphabet, else `ucs2`."""
    return "gsm7" if is_gsm7(text) else "ucs2"


def cost(text: str, encoding: Encoding | None = None) -> int:
    """Septets (extension characters count 2) or UTF-16 code units (astral count 2).

    `encoding` defaults to the one the text itself needs.
    """
    if encoding is None:
        encoding = encoding_of(text)
    if encoding == "gsm7":
        return septets(text)
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) >> 1


def fits(text: str, limits: Limits) -> bool:
    """Whether the whole text fits one USSD string in the encoding it needs."""
    encoding = encoding_of(text)
    return cost(text, encoding) <= limits.of(encoding)
