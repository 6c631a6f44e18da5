"""`X-Twilio-Signature` verification as one pure function (reference/ivr.md §1.3).

The string signed is the full URL Twilio requested, then each form parameter name
followed by its value, names sorted (repeated names: each distinct value, sorted).
HMAC-SHA1 under the auth token by default, HMAC-SHA256 when the
`X-Twilio-Webhooks-Signature-Settings` header says so; base64. JSON webhooks carry
`?bodySHA256=<hex>` in the URL: the URL alone is signed and the body must hash to it.
Like twilio's `RequestValidator`, the URL is tried with and without its default port,
because Twilio's signers disagree on it. Hand-written (not the SDK) so the channel
does not pull the whole Twilio SDK in as a runtime dependency for ~40 lines.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

__all__ = [
    "HMAC_SHA1",
    "HMAC_SHA256",
    "SIGNATURE_HEADER",
    "SIGNATURE_SETTINGS_HEADER",
    "check_request",
    "compute_signature",
    "signature_algorithm",
    "verify",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
HMAC_SHA1 = "HMAC_SHA1"
HMAC_SHA256 = "HMAC_SHA256"

_HASHES: dict[str, Callable[..., Any]] = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}

Params = Mapping[str, str] | Iterable[tuple[str, str]]


def signature_algorithm(settings_header: str | None) -> str:
    """`key=…,algorithm=HMAC_SHA256` → `HMAC_SHA256`; absent → the legacy `HMAC_SHA1`."""
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return HMAC_SHA1


def _pairs(params: Params) -> list[tuple[str, str]]:
    getall = getattr(params, "getall", None)
    if isinstance(params, Mapping):
        if getall is not None:  # a MultiDict: every value of every key
            return [(name, value) for name in set(params) for value in getall(name)]
        return [(str(name), str(value)) for name, value in params.items()]
    return [(str(name), str(value)) for name, value in params]


def _signed_string(url: str, params: Params) -> str:
    values: dict[str, set[str]] = {}
    for name, value in _pairs(params):
        values.setdefault(name, set()).add(value)
    parts = [url]
    for name in sorted(values):
        parts.extend(name + value for value in sorted(values[name]))
    return "".join(parts)


def compute_signature(url: str, params: Params, secret: str, algorithm: str = HMAC_SHA1) -> str:
    """The base64 signature Twilio would send for this URL and these parameters."""
    digest = _HASHES[algorithm]
    mac = hmac.new(secret.encode("utf-8"), _signed_string(url, params).encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def _port_variants(url: str) -> tuple[str, str]:
    """(URL without port, URL with the scheme's default port), as twilio's validator does."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    without = urlunsplit(parts._replace(netloc=prefix + host)) if parts.port else url
    with_port = url if parts.port else urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port}"))
    return without, with_port


def verify(
    url: str,
    params: Params | str | bytes | None,
    header: str | None,
    secret: str,
    algorithm: str = HMAC_SHA1,
) -> bool:
    """True when `header` is Twilio's signature of this request under `secret`.

    `params`: the form fields (a mapping, a MultiDict or `(name, value)` pairs), or the
    raw body (`str`/`bytes`) of a JSON webhook whose URL carries `bodySHA256`.
    """
    if not header or not secret or algorithm not in _HASHES:
        return False
    try:
        expected_header = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    fields: Params
    if isinstance(params, str | bytes):
        body = params.encode("utf-8") if isinstance(params, str) else params
        claimed = parse_qs(urlsplit(url).query).get("bodySHA256")
        if not claimed:
            return False  # a raw body is only ever signed through its hash in the URL
        actual = hashlib.sha256(body).hexdigest().encode("ascii")
        if not hmac.compare_digest(actual, claimed[0].strip().lower().encode("ascii", "replace")):
            return False
        fields = ()
    else:
        fields = params if params is not None else ()
    try:
        # A URL no platform could have signed (a port that is not a number, text that is
        # not Unicode) cannot carry a valid signature.
        candidates = _port_variants(url)
        signatures = [
            compute_signature(candidate, fields, secret, algorithm).encode("ascii")
            for candidate in candidates
        ]
    except ValueError:  # UnicodeEncodeError included
        return False
    matched = False
    for signature in signatures:
        # Both variants are always computed so timing does not say which one matched.
        matched |= hmac.compare_digest(signature, expected_header)
    return matched


def check_request(
    url: str, params: Params | str | bytes, headers: Mapping[str, str], secret: str
) -> bool:
    """`verify` with the algorithm the request's signature-settings header names."""
    algorithm = signature_algorithm(headers.get(SIGNATURE_SETTINGS_HEADER))
    return verify(url, params, headers.get(SIGNATURE_HEADER), secret, algorithm)
