"""One canonical form per phone number, so `+86 138…`, `0086138…` and `138…` are one subscriber.

The rule lives in `hotline.base.privacy.canonical_msisdn` (pseudonyms use it too); this module
adds the E.164 spelling the balance-query v1 contract wants on the wire.
"""

from __future__ import annotations

from hotline.base.privacy import canonical_msisdn

__all__ = ["canonical_msisdn", "e164"]

CN_PREFIX = "86"


def e164(canonical: str) -> str:
    """`+8613800138000` for an 11-digit Chinese mobile number, else `+` and the digits."""
    if len(canonical) == 11 and canonical.startswith("1"):
        return f"+{CN_PREFIX}{canonical}"
    return f"+{canonical}"
