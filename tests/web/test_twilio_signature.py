"""ivr.auth.verify against the official twilio RequestValidator as the independent signer."""

from __future__ import annotations

import hashlib
import json

import pytest
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from ivr.auth import HMAC_SHA1, HMAC_SHA256, compute_signature, signature_algorithm, verify

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_known_vector_from_the_reference() -> None:
    assert compute_signature(URL, PARAMS, TOKEN) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert compute_signature(URL, PARAMS, TOKEN, HMAC_SHA256) == (
        "Rmm4Vzj+Ky7JGoWXMCsZDZuHDszLr9xvdbvitrDr4/M="
    )


@pytest.mark.parametrize("algorithm", [HMAC_SHA1, HMAC_SHA256])
@pytest.mark.parametrize(
    "url",
    [
        URL,
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        "http://127.0.0.1:8080/ivr/twilio/voice",
        "http://ivr.example.com/ivr/twilio/gather?step=2",
    ],
)
def test_twilio_signs_we_accept(url: str, algorithm: str) -> None:
    signature = RequestValidator(TOKEN).compute_signature(url, PARAMS, algorithm)
    assert verify(url, PARAMS, signature, TOKEN, algorithm)
    assert RequestValidator(TOKEN).validate(url, PARAMS, signature, algorithm)


def test_port_variants_both_ways() -> None:
    bare = "https://mycompany.com/myapp.php?foo=1&bar=2"
    ported = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    validator = RequestValidator(TOKEN)
    assert verify(bare, PARAMS, validator.compute_signature(ported, PARAMS), TOKEN)
    assert verify(ported, PARAMS, validator.compute_signature(bare, PARAMS), TOKEN)


@pytest.mark.parametrize(
    ("url", "params", "secret"),
    [
        ("https://mycompany.com/other.php?foo=1&bar=2", PARAMS, TOKEN),  # replayed elsewhere
        ("https://mycompany.com/myapp.php?foo=1&bar=3", PARAMS, TOKEN),  # query changed
        ("http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS, TOKEN),  # scheme changed
        (URL, {**PARAMS, "Digits": "1"}, TOKEN),  # a field changed
        (URL, {**PARAMS, "Extra": "x"}, TOKEN),  # a field added
        (URL, PARAMS, "54321"),  # someone else's token
    ],
)
def test_any_change_fails(url: str, params: dict[str, str], secret: str) -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, PARAMS)
    assert not verify(url, params, signature, secret)


@pytest.mark.parametrize("header", [None, "", "garbage", "0/KCTR6DLpKmkAf8muzZqo1nDgQ", "ü"])
def test_missing_or_malformed_header(header: str | None) -> None:
    assert not verify(URL, PARAMS, header, TOKEN)


def test_no_secret_never_verifies() -> None:
    assert not verify(URL, PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "")


def test_unknown_algorithm_fails() -> None:
    assert not verify(URL, PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", TOKEN, "HMAC_MD5")


def test_repeated_keys_sign_like_the_sdk() -> None:
    params = MultiDict([("b", "2"), ("a", "1"), ("a", "0")])
    signature = RequestValidator(TOKEN).compute_signature(URL, params)
    assert verify(URL, params, signature, TOKEN)
    assert verify(URL, [("a", "0"), ("b", "2"), ("a", "1")], signature, TOKEN)
    assert not verify(URL, {"a": "1", "b": "2"}, signature, TOKEN)


def test_json_body_sha256_form() -> None:
    body = json.dumps({"CallSid": "CA1", "From": "+8613800138000"})
    url = (
        "https://ivr.example.com/ivr/twilio/status?bodySHA256="
        + hashlib.sha256(body.encode()).hexdigest()
    )
    signature = RequestValidator(TOKEN).compute_signature(url, {})
    assert RequestValidator(TOKEN).validate(url, body, signature)
    assert verify(url, body, signature, TOKEN)
    assert verify(url, body.encode(), signature, TOKEN)
    assert not verify(url, body + " ", signature, TOKEN)  # body tampered
    assert not verify(url.split("?")[0], body, signature, TOKEN)  # hash missing from URL


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, HMAC_SHA1),
        ("", HMAC_SHA1),
        ("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256", HMAC_SHA256),
        ("algorithm=hmac_sha256", HMAC_SHA256),
        ("key=abc", HMAC_SHA1),
    ],
)
def test_signature_algorithm(header: str | None, expected: str) -> None:
    assert signature_algorithm(header) == expected
