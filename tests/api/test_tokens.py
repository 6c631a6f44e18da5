"""Tokens: what they carry, that the number is sealed, and that expiry holds even for a
token verified (and remembered) before."""

from __future__ import annotations

import base64
import json
import time

import pytest

from api.tokens import TokenError, Tokens


def test_subscriber_token_round_trip_seals_the_number() -> None:
    tokens = Tokens("secret-one")
    token, issued = tokens.issue(
        "subscriber",
        client="cl_1",
        client_name="app",
        scopes=frozenset({"balance:read"}),
        ttl=60,
        msisdn="+8613800138000",
    )
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert "13800138000" not in json.dumps(payload) and payload["typ"] == "subscriber"
    claims = tokens.verify(token)
    assert claims == issued and claims.msisdn == "+8613800138000"
    with pytest.raises(TokenError):
        Tokens("secret-two").verify(token)  # another key: forged


def test_expiry_holds_for_a_remembered_token() -> None:
    tokens = Tokens("secret")
    now = time.time()
    token, _ = tokens.issue(
        "client", client="cl_1", client_name="app", scopes=frozenset(), ttl=60, now=now
    )
    assert tokens.verify(token, now=now + 59).client == "cl_1"
    with pytest.raises(TokenError):
        tokens.verify(token, now=now + 61)


def test_a_changed_payload_is_refused() -> None:
    tokens = Tokens("secret")
    token, _ = tokens.issue(
        "subscriber", client="c", client_name="c", scopes=frozenset(), ttl=60, msisdn="+861"
    )
    head, body, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=="))
    data["scope"] = "balance:read plan:read"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    with pytest.raises(TokenError):
        tokens.verify(f"{head}.{forged}.{sig}")
