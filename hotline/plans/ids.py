"""Order ids: derived from the session and the confirmed choice, never random per try.

The confirmation screen's action draws a `nonce` once and keeps it in the session; the
order id is a keyed digest of (subscriber, nonce, offer). A gateway retry, a second
press of "confirm" or a worker restarted after it submitted all meet the same session
record and so the same id — which the upstream receives as `externalId` /
`Idempotency-Key` — while a new confirmation (a new quote) gets a new one.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["new_nonce", "order_id"]


def new_nonce() -> str:
    """A fresh per-confirmation nonce (kept in the session)."""
    return secrets.token_hex(8)


def order_id(secret: str, subscriber: str, nonce: str, offer_id: str) -> str:
    """`PO` + 20 hex digits: the same for the same confirmation, and nobody else's."""
    digest = hashlib.blake2b(
        f"{subscriber}\x1f{nonce}\x1f{offer_id}".encode(),
        key=secret.encode()[:64],
        digest_size=10,
    ).hexdigest()
    return f"PO{digest.upper()}"
