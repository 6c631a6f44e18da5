"""The GSM 03.38 default alphabet, shared by every channel that counts septets.

3GPP TS 23.038 §6.2.1: 128 characters of the default alphabet (one septet each) and
the extension table reached through ESC (two septets each). A text is sent in GSM-7 only
if every character is in one of them; one other character (any Chinese character)
makes the whole text UCS-2. The tables are the same as `ussd/budget.py`'s (which the
USSD channel keeps for its own hot path); `tests/sms/test_segments.py` checks both
against the `gsm0338` codec.
"""

from __future__ import annotations

import re

__all__ = ["GSM7_BASIC", "GSM7_EXTENSION", "is_gsm7", "septets"]

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
