"""One canonical form per phone number, so `+86 138…`, `0086138…` and `138…` are one subscriber.

Rule (documented in docs/balance.md): keep digits only; a leading `00` international
prefix is dropped; a 13-digit number `86` + `1xxxxxxxxxx` (a Chinese mobile number in
international form) loses its `86`. Anything else is kept as given, if it has 5-15
digits (E.164 allows at most 15).
"""

from __future__ import annotations

from hotline.privacy import normalize_msisdn

__all__ = ["canonical_msisdn", "e164"]

CN_PREFIX = "86"


def canonical_msisdn(raw: str) -> str:
    """The stored and pseudonymized form; raises `ValueError` (without the number)."""
    digits = normalize_msisdn(raw)
    if digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 13 and digits.startswith(CN_PREFIX + "1"):
        digits = digits[2:]
    if not 5 <= len(digits) <= 15:
        raise ValueError(f"a phone number has 5 to 15 digits, got {len(digits)}")
    return digits


def e164(canonical: str) -> str:
    """`+8613800138000` for an 11-digit Chinese mobile number, else `+` and the digits."""
    if len(canonical) == 11 and canonical.startswith("1"):
        return f"+{CN_PREFIX}{canonical}"
    return f"+{canonical}"
