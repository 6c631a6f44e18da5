"""Client and subscriber tokens: short-lived JWTs (PyJWT, HS256) signed with the API key.

A client token (`typ: client`) is what client credentials buy; a subscriber token
(`typ: subscriber`) is what a signed-in subscriber's SMS code buys, issued to one client
and carrying that client's scopes. The subscriber's number travels inside the token
encrypted (AES-GCM under a key derived from the same secret), so a token that ends up
in a log shows no number, and the server needs no lookup to serve `/me/*`. Every token
has a `jti`, so it can be revoked (`hotline.api` keeps revoked ids in Redis until they
expire anyway).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Claims", "TokenError", "Tokens", "derive_secret"]

ISSUER = "hotline"
AUDIENCE = "hotline-api"
TokenType = Literal["client", "subscriber"]


class TokenError(Exception):
    """The token is malformed, forged or expired (the caller answers 401)."""


def derive_secret(base: str, purpose: str) -> bytes:
    """A key for one purpose from a configured secret (HMAC-SHA256 as a KDF)."""
    return hmac.new(
        base.encode("utf-8"), f"hotline-api:{purpose}".encode(), hashlib.sha256
    ).digest()


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says."""

    typ: TokenType
    client: str  # the client id
    client_name: str
    scopes: frozenset[str]
    jti: str
    expires_at: int
    msisdn: str | None = None  # subscriber tokens only


class Tokens:
    """Issue and verify tokens under one secret."""

    def __init__(self, secret: str, *, remember: int = 50_000) -> None:
        self._sign = derive_secret(secret, "jwt")
        self._seal = AESGCM(derive_secret(secret, "msisdn"))
        # Tokens verified lately, by their exact text: an app calls with one token many
        # times, and the signature and the sealed number of the same bytes cannot change.
        # Expiry is checked on every use (an expired one is forgotten); revocation is the
        # caller's (Redis) check. A plain dict, oldest out first when full: a hit is one
        # lookup (an LRU's bookkeeping cost more than the rest of `verify`).
        self._verified: dict[str, Claims] = {}
        self._remember = remember

    def issue(
        self,
        typ: TokenType,
        *,
        client: str,
        client_name: str,
        scopes: frozenset[str],
        ttl: int,
        msisdn: str | None = None,
        now: float | None = None,
    ) -> tuple[str, Claims]:
        issued = int(now if now is not None else time.time())
        claims = Claims(
            typ=typ,
            client=client,
            client_name=client_name,
            scopes=scopes,
            jti=uuid.uuid4().hex,
            expires_at=issued + ttl,
            msisdn=msisdn,
        )
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "typ": typ,
            "sub": client if typ == "client" else self._subject(msisdn),
            "cid": client,
            "cnm": client_name,
            "scope": " ".join(sorted(scopes)),
            "jti": claims.jti,
            "iat": issued,
            "exp": claims.expires_at,
        }
        if msisdn is not None:
            payload["msn"] = self._encrypt(msisdn)
        return jwt.encode(payload, self._sign, algorithm="HS256"), claims

    def verify(self, token: str, now: float | None = None) -> Claims:
        """The token's claims; `TokenError` when forged, malformed or expired."""
        verified = self._verified
        claims = verified.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(verified) >= self._remember:
                del verified[next(iter(verified))]
            verified[token] = claims
        if claims.expires_at <= (now if now is not None else time.time()):
            verified.pop(token, None)
            raise TokenError("ExpiredSignatureError")
        return claims

    def _decode(self, token: str) -> Claims:
        try:
            data = jwt.decode(
                token,
                self._sign,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "jti", "typ", "cid"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(type(exc).__name__) from exc
        typ = data.get("typ")
        if typ not in ("client", "subscriber"):
            raise TokenError("unknown token type")
        msisdn = None
        if typ == "subscriber":
            sealed = data.get("msn")
            if not isinstance(sealed, str):
                raise TokenError("subscriber token without a subscriber")
            msisdn = self._decrypt(sealed)
        return Claims(
            typ=typ,
            client=str(data["cid"]),
            client_name=str(data.get("cnm", "")),
            scopes=frozenset(str(data.get("scope", "")).split()),
            jti=str(data["jti"]),
            expires_at=int(data["exp"]),
            msisdn=msisdn,
        )

    def _subject(self, msisdn: str | None) -> str:
        # Not the number: a stable, meaningless id for the token's audience.
        digest = hmac.new(self._sign, (msisdn or "").encode(), hashlib.sha256).hexdigest()
        return f"sub_{digest[:20]}"

    def _encrypt(self, msisdn: str) -> str:
        nonce = os.urandom(12)
        sealed = nonce + self._seal.encrypt(nonce, msisdn.encode("utf-8"), b"msisdn")
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def _decrypt(self, text: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return self._seal.decrypt(raw[:12], raw[12:], b"msisdn").decode("utf-8")
        except Exception as exc:  # forged or truncated: the same answer as a bad token
            raise TokenError("subscriber does not decrypt") from exc
