"""The GSM 03.38 default alphabet, shared by every channel that counts septets.

3GPP TS 23.038 §6.2.1: 128 characters of the default alphabet (one septet each) and
the extension table reached through ESC (two septets each). `gsm7_octets` / `gsm7_text`
are the unpacked codec SMPP carries (`data_coding` 0, one septet per octet), used by the
SMS channel's SMSC bind and the USSD channel's gateway bind. A text is sent in GSM-7 only
if every character is in one of them; one other character (any Chinese character)
makes the whole text UCS-2. The tables are the same as `ussd/budget.py`'s (which the
USSD channel keeps for its own hot path); `tests/sms/test_segments.py` checks both
against the `gsm0338` codec.
"""

from __future__ import annotations

import re

__all__ = ["GSM7_BASIC", "GSM7_EXTENSION", "gsm7_octets", "gsm7_text", "is_gsm7", "septets"]

# Code order 0x00..0x7F without 0x1B (ESC, the escape to the extension table).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Each costs two septets (ESC + character).
GSM7_EXTENSION = "\f^{}\\[~]|€"

_NOT_GSM7 = re.compile("[^" + re.escape(GSM7_BASIC + GSM7_EXTENSION) + "]")
_EXTENSION = re.compile("[" + re.escape(GSM7_EXTENSION) + "]")


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` is in the default alphabet or its extension."""
    return _NOT_GSM7.search(text) is None


def septets(text: str) -> int:
    """Septets `text` takes in GSM-7 (extension characters count two); `text` must be
    `is_gsm7`."""
    return len(text) + len(_EXTENSION.findall(text))


_GSM7_CODE: dict[str, int] = {
    char: (index if index < 0x1B else index + 1) for index, char in enumerate(GSM7_BASIC)
}
_GSM7_EXT_CODE: dict[str, int] = dict(
    zip(GSM7_EXTENSION, (0x0A, 0x14, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40, 0x65), strict=True)
)
_GSM7_CHAR = {code: char for char, code in _GSM7_CODE.items()}
_GSM7_EXT_CHAR = {code: char for char, code in _GSM7_EXT_CODE.items()}


def gsm7_octets(text: str) -> bytes:
    """`text` in the GSM 03.38 default alphabet, one septet per octet (SMPP's unpacked
    `data_coding` 0); extension characters as ESC (0x1B) + code."""
    out = bytearray()
    for char in text:
        code = _GSM7_CODE.get(char)
        if code is not None:
            out.append(code)
            continue
        ext = _GSM7_EXT_CODE.get(char)
        if ext is None:
            raise ValueError("not in the GSM 03.38 alphabet")
        out += bytes((0x1B, ext))
    return bytes(out)


def gsm7_text(octets: bytes) -> str:
    """The inverse of `gsm7_octets` (unknown codes become `?`)."""
    chars: list[str] = []
    escape = False
    for octet in octets:
        if escape:
            chars.append(_GSM7_EXT_CHAR.get(octet, "?"))
            escape = False
        elif octet == 0x1B:
            escape = True
        else:
            chars.append(_GSM7_CHAR.get(octet & 0x7F, "?"))
    return "".join(chars)
