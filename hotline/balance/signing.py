"""HMAC request signing of the "balance-query v1" contract (reference §7.2).

Pure functions shared by the `http` provider (signs) and the billing simulator
(verifies), so both sides agree byte for byte:

    Authorization: BQ1-HMAC-SHA256 keyId=<id>, signature=<base64>
    X-BQ-Timestamp: <unix ms>    X-BQ-Nonce: <uuid4 hex>
    string_to_sign = SCHEME \\n METHOD \\n PATH \\n canonical_query \\n keyId \\n ts \\n nonce
                     \\n hex(sha256(body))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from urllib.parse import quote

__all__ = [
    "SCHEME",
    "auth_headers",
    "canonical_query",
    "parse_authorization",
    "signature",
    "string_to_sign",
    "verify_signature",
]

SCHEME = "BQ1-HMAC-SHA256"
_AUTH = re.compile(
    rf"^{SCHEME} keyId=([A-Za-z0-9._-]{{1,64}}), signature=([A-Za-z0-9+/=]{{1,128}})$"
)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Percent-encoded `k=v` pairs sorted by key then value, joined by `&`."""
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def string_to_sign(
    method: str, path: str, query: str, key_id: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    parts = (
        SCHEME,
        method.upper(),
        path,
        query,
        key_id,
        timestamp,
        nonce,
        hashlib.sha256(body).hexdigest(),
    )
    # surrogatepass: a header's undecodable bytes (lone surrogates) sign, and fail to
    # verify, instead of raising.
    return "\n".join(parts).encode("utf-8", errors="surrogatepass")


def signature(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def auth_headers(
    *,
    method: str,
    path: str,
    query: str,
    key_id: str,
    secret: str,
    body: bytes,
    timestamp_ms: int,
    nonce: str,
) -> dict[str, str]:
    """The three headers a signed request carries."""
    ts = str(timestamp_ms)
    sig = signature(secret, string_to_sign(method, path, query, key_id, ts, nonce, body))
    return {
        "Authorization": f"{SCHEME} keyId={key_id}, signature={sig}",
        "X-BQ-Timestamp": ts,
        "X-BQ-Nonce": nonce,
    }


def parse_authorization(header: str | None) -> tuple[str, str] | None:
    """`(key_id, signature)` from an Authorization header, or None if malformed."""
    if header is None:
        return None
    match = _AUTH.match(header.strip())
    return (match.group(1), match.group(2)) if match else None


def verify_signature(secret: str, message: bytes, given: str) -> bool:
    return hmac.compare_digest(signature(secret, message), given)
