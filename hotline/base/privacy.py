"""Keyed pseudonyms and display masks for phone numbers (DESIGN.md §10).

Every function here is total over `str`: a number arrives from a gateway before any
dialect has judged it (the gateway guard rate-limits by pseudonym first), so nothing may
raise on what a client sent. A phone number's canonical form is ASCII digits: a Unicode
decimal digit in another script (`١٣٨`, full-width `１３８`) counts as the digit it is,
so a number has one pseudonym however it was written. The gateway dialects still refuse
such numbers with a 400 (docs/operations.md, "Phone numbers"): no gateway sends them.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import unicodedata

__all__ = [
    "Pseudonymizer",
    "ascii_digits",
    "canonical_msisdn",
    "mask_msisdn",
    "normalize_msisdn",
]

_NON_DIGITS = re.compile(r"[^0-9]+")  # ASCII on purpose: `\D` would keep ١ and １


def ascii_digits(text: str) -> str:
    """Every Unicode decimal digit (category Nd: `١`, `１`, `٣`…) as its ASCII digit;
    everything else unchanged. `²` is not a decimal digit and stays."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def normalize_msisdn(raw: str) -> str:
    """ASCII digits only, so `+86 138-0013-8000`, `8613800138000` and `+８６１３８…`
    pseudonymize alike."""
    return _NON_DIGITS.sub("", ascii_digits(raw))


def canonical_msisdn(raw: str) -> str:
    """One form per subscriber: `+86 138…`, `0086138…` and `138…` are the same number.

    Digits only; a leading `00` international prefix is dropped; a 13-digit `86` +
    `1xxxxxxxxxx` (a Chinese mobile in international form) loses its `86`. Raises
    `ValueError` (without echoing the number) unless 5-15 digits remain (E.164).
    """
    digits = normalize_msisdn(raw)
    if digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    if not 5 <= len(digits) <= 15:
        raise ValueError(f"a phone number has 5 to 15 digits, got {len(digits)}")
    return digits


def mask_msisdn(msisdn: str) -> str:
    """`138****1234` style mask, for humans only (never as a key)."""
    try:
        digits = canonical_msisdn(msisdn)
    except ValueError:
        digits = normalize_msisdn(msisdn)
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


class Pseudonymizer:
    """HMAC-SHA256 of the normalized number under a secret key, truncated.

    The same number always gives the same pseudonym under one key, so logs,
    metrics and Redis keys can be correlated without ever holding the number.
    """

    __slots__ = ("_cached", "_key", "_length")

    def __init__(self, secret: str, length: int = 20, cache_size: int = 8192) -> None:
        if not secret:
            raise ValueError("pseudonym secret must not be empty")
        self._key = secret.encode("utf-8")
        self._length = length
        # A step needs the same pseudonym several times (session keys, balance cache,
        # rate limits, logs): remember recent ones in this process.
        self._cached = functools.lru_cache(maxsize=cache_size)(self._compute)

    def __call__(self, msisdn: str) -> str:
        return self._cached(msisdn)

    def _compute(self, msisdn: str) -> str:
        try:
            subject = canonical_msisdn(msisdn)
        except ValueError:
            subject = normalize_msisdn(msisdn)
        digest = hmac.new(self._key, subject.encode("ascii"), hashlib.sha256)
        return digest.hexdigest()[: self._length]
