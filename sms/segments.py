"""How an SMS text is encoded and cut into parts (3GPP TS 23.038, TS 23.040 §9.2.3.24.1).

Pure functions on strings, table-tested in `tests/sms/test_segments.py`:

- **GSM-7** when every character is in the GSM 03.38 default alphabet or its extension
  table: 160 septets in one message, 153 per part of a concatenated one (the 6-octet
  concatenation UDH takes 7 septets); an extension character (`^{}\\[~]|€`, form feed)
  costs two septets and its escape is never split from it.
- **UCS-2** otherwise (one Chinese character switches the whole text): 70 UTF-16 code
  units in one message, 67 per part. A character outside the BMP is a surrogate pair
  (two units) and stays whole in one part.

A message has at most `max_parts` parts (default 3, `sms.max_parts`); `fit` shortens a
body that would need more, keeping a suffix (the signature) whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hotline.i18n.gsm7 import GSM7_EXTENSION, is_gsm7, septets

__all__ = [
    "DEFAULT_MAX_PARTS",
    "GSM7_PART",
    "GSM7_SINGLE",
    "UCS2_PART",
    "UCS2_SINGLE",
    "Encoding",
    "Segments",
    "capacity",
    "encoding_of",
    "fit",
    "segment",
    "units",
]

Encoding = Literal["gsm7", "ucs2"]

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67
DEFAULT_MAX_PARTS = 3

_EXTENSION = frozenset(GSM7_EXTENSION)


@dataclass(frozen=True, slots=True)
class Segments:
    """A text as it goes over the air: its encoding and its parts, in order."""

    encoding: Encoding
    parts: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a message has at least one part")

    @property
    def count(self) -> int:
        return len(self.parts)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def data_coding(self) -> int:
        """SMPP `data_coding` / Kannel `coding` family: 0 GSM (SMSC default), 8 UCS-2."""
        return 0 if self.encoding == "gsm7" else 8


def encoding_of(text: str) -> Encoding:
    """`gsm7` if every character fits the GSM 03.38 alphabet, else `ucs2`."""
    return "gsm7" if is_gsm7(text) else "ucs2"


def _cost(char: str, encoding: Encoding) -> int:
    if encoding == "gsm7":
        return 2 if char in _EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def units(text: str, encoding: Encoding | None = None) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of `text` in its own encoding."""
    encoding = encoding or encoding_of(text)
    if encoding == "gsm7":
        return septets(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def capacity(encoding: Encoding, parts: int) -> int:
    """Units that fit in `parts` parts: 160/70 for one, 153/67 each for more."""
    if parts <= 1:
        return GSM7_SINGLE if encoding == "gsm7" else UCS2_SINGLE
    return parts * (GSM7_PART if encoding == "gsm7" else UCS2_PART)


def segment(text: str) -> Segments:
    """The encoding and the parts of `text` (an empty text is one empty part).

    Python strings are sequences of code points, so walking them character by
    character never separates a surrogate pair or an escape from its character.
    """
    encoding = encoding_of(text)
    if units(text, encoding) <= capacity(encoding, 1):
        return Segments(encoding, (text,))
    limit = GSM7_PART if encoding == "gsm7" else UCS2_PART
    parts: list[str] = []
    start = used = 0
    for index, char in enumerate(text):
        cost = _cost(char, encoding)
        if used + cost > limit:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    return Segments(encoding, tuple(parts))


def fit(body: str, suffix: str, max_parts: int, *, ellipsis: str | None = None) -> str:
    """`body + suffix`, with `body` shortened (and `ellipsis` added) if the whole would
    need more than `max_parts` parts. The suffix is never cut; if it alone does not fit,
    it is returned alone."""
    whole = body + suffix
    encoding = encoding_of(whole)
    room = capacity(encoding, max_parts)
    if units(whole, encoding) <= room:
        return whole
    mark = ellipsis if ellipsis is not None else ("..." if encoding == "gsm7" else "…")
    budget = room - units(suffix + mark, encoding)
    while budget > 0:
        kept: list[str] = []
        used = 0
        for char in body:
            cost = _cost(char, encoding)
            if used + cost > budget:
                break
            kept.append(char)
            used += cost
        shortened = "".join(kept).rstrip() + mark + suffix
        # An escape or a surrogate pair that would straddle a part boundary moves to the
        # next part whole, which can cost a unit: measure the real parts.
        if segment(shortened).count <= max_parts:
            return shortened
        budget -= 1
    return suffix
