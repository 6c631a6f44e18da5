"""Gateway authentication as pure functions: CIDR allow-lists, proxies, tokens.

Nothing here touches aiohttp; `hotline.web.guards` applies these to requests. Every
secret comparison goes through `hmac.compare_digest` so timing says nothing, on bytes:
what a client presents is whatever its bytes decoded to (aiohttp keeps undecodable header
bytes as lone surrogates), so it is encoded with `surrogatepass`, which never fails.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "Network",
    "authority_ok",
    "bearer_ok",
    "client_ip",
    "ip_allowed",
    "parse_networks",
    "token_ok",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# RFC 3986 authority without userinfo: a reg-name or IPv4 (ASCII only), or a bracketed
# IPv6 literal; then an optional port of digits.
_AUTHORITY = re.compile(
    r"(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9\-._~!$&'()*+,;=%]{1,253})(?::([0-9]{1,5}))?"
)


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """`["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]` → networks; a bare address is /32 or /128.

    Raises `ValueError` naming the bad entry (config validation turns it into one line).
    """
    networks: list[Network] = []
    for raw in cidrs:
        text = raw.strip()
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"{raw!r} is not an IP network (CIDR) or address") from exc
    return tuple(networks)


def _address(text: str | None) -> _Address | None:
    if not text:
        return None
    candidate = text.strip()
    if candidate.startswith("[") and "]" in candidate:  # "[2001:db8::1]:443"
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1:  # "192.0.2.1:5060"
        candidate = candidate.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _inside(address: _Address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[Network]
) -> _Address | None:
    """The address that really sent the request, or None if it cannot be told.

    `X-Forwarded-For` is honoured only when the TCP peer is a trusted proxy; then the
    list is walked from the right, skipping further trusted proxies, and the first
    untrusted hop is the client. Entries left of it are client-supplied and ignored,
    so a forged header cannot move the answer past the proxy that appended to it.
    """
    address = _address(peer)
    if address is None or not forwarded_for or not _inside(address, trusted_proxies):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = _address(hop)
        if hop_address is None:
            return None  # garbage in the chain our proxy vouched for: refuse to guess
        if not _inside(hop_address, trusted_proxies):
            return hop_address
        address = hop_address
    return address


def authority_ok(host: str | None) -> bool:
    """A `Host` (or `X-Forwarded-Host`) value a URL can be built from: ASCII host, a
    bracketed IPv6 literal that parses, a port of 1-65535 if any. Anything else came from a
    broken or hostile client, and no platform signed a URL with it."""
    match = _AUTHORITY.fullmatch(host or "")
    if match is None:
        return False
    name, port = match.groups()
    if port is not None and not 0 < int(port) <= 65535:
        return False
    if name.startswith("["):
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return False
    return True


def ip_allowed(address: _Address | None, allowed: Sequence[Network]) -> bool:
    """True when the address is inside one of the allowed networks (no address: no)."""
    return address is not None and _inside(address, allowed)


def _wire_bytes(text: str) -> bytes:
    """Any str as bytes: UTF-8, lone surrogates (undecodable bytes a client sent) kept
    rather than raising, so they simply compare unequal to a configured secret."""
    return text.encode("utf-8", errors="surrogatepass")


def token_ok(given: str | None, expected: str) -> bool:
    """Constant-time equality of a presented secret with the configured one."""
    if given is None or not expected:
        return False
    return hmac.compare_digest(_wire_bytes(given), _wire_bytes(expected))


def bearer_ok(authorization: str | None, expected: str) -> bool:
    """`Authorization: Bearer <token>` carries exactly the configured token."""
    if not authorization or not expected:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return token_ok(credentials.strip(), expected)
