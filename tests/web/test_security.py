"""Pure gateway-auth helpers: networks, proxies, tokens."""

from __future__ import annotations

import ipaddress

import pytest

from hotline.web.security import bearer_ok, client_ip, ip_allowed, parse_networks, token_ok

PROXY = parse_networks(["127.0.0.1/32", "10.1.0.0/16"])


def test_parse_networks_accepts_cidrs_and_bare_addresses() -> None:
    nets = parse_networks(["192.0.2.0/24", " 2001:db8::/32 ", "198.51.100.7", "10.0.0.1/8"])
    assert [str(n) for n in nets] == [
        "192.0.2.0/24",
        "2001:db8::/32",
        "198.51.100.7/32",
        "10.0.0.0/8",
    ]


def test_parse_networks_names_the_bad_entry() -> None:
    with pytest.raises(ValueError, match=r"'192\.0\.2\.0/33'"):
        parse_networks(["192.0.2.0/24", "192.0.2.0/33"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("198.51.100.9", None, "198.51.100.9"),  # direct
        ("198.51.100.9", "203.0.113.5", "198.51.100.9"),  # untrusted peer: header ignored
        ("127.0.0.1", "203.0.113.5", "203.0.113.5"),  # trusted proxy
        ("127.0.0.1", "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # forged left part ignored
        ("127.0.0.1", "203.0.113.5, 10.1.2.3", "203.0.113.5"),  # proxy chain skipped
        ("127.0.0.1", "10.1.2.3", "10.1.2.3"),  # only proxies: the leftmost
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.5:4711", "203.0.113.5"),
        ("127.0.0.1", "[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:127.0.0.1", "203.0.113.5", "203.0.113.5"),  # v4-mapped peer
        ("127.0.0.1", "not-an-ip", None),
        (None, "203.0.113.5", None),
    ],
)
def test_client_ip(peer: str | None, xff: str | None, expected: str | None) -> None:
    got = client_ip(peer, xff, PROXY)
    assert (str(got) if got is not None else None) == expected


def test_ip_allowed() -> None:
    allowed = parse_networks(["203.0.113.0/24", "2001:db8::/32"])
    assert ip_allowed(ipaddress.ip_address("203.0.113.200"), allowed)
    assert ip_allowed(ipaddress.ip_address("2001:db8::1"), allowed)
    assert not ip_allowed(ipaddress.ip_address("203.0.114.1"), allowed)
    assert not ip_allowed(None, allowed)
    assert not ip_allowed(ipaddress.ip_address("203.0.113.1"), ())


def test_tokens() -> None:
    assert token_ok("s3cret-token", "s3cret-token")
    assert not token_ok("s3cret-tokeN", "s3cret-token")
    assert not token_ok(None, "s3cret-token")
    assert not token_ok("", "")
    assert bearer_ok("Bearer s3cret", "s3cret")
    assert bearer_ok("bearer   s3cret ", "s3cret")
    assert not bearer_ok("Basic s3cret", "s3cret")
    assert not bearer_ok("Bearer", "s3cret")
    assert not bearer_ok(None, "s3cret")
    assert not bearer_ok("Bearer x", "")
