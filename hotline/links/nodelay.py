"""Nagle's algorithm off on a link's socket that its library opened for us.

SMPP is small request/response PDUs: a `deliver_sm_resp` goes out, then the `submit_sm`
with the answer a moment later. With Nagle on, that second PDU waits until the first is
acknowledged — and the SMSC, with nothing to say in the meantime, delays its ACK by
~40 ms. Every keyword answer paid that wait (bench/sms.py: p99 97 ms at 50 in flight,
23 ms with `TCP_NODELAY`). `smpp34` opens its socket in its Rust core and offers no
`nodelay` option, so the socket is found among this process's descriptors
(`/proc/self/fd`, Linux) by its peer and `TCP_NODELAY` is set on a duplicate of it —
socket options belong to the socket, not the descriptor. Elsewhere it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat

__all__ = ["peer_addresses", "tcp_nodelay"]

_FDS = "/proc/self/fd"


async def peer_addresses(host: str, port: int) -> frozenset[str]:
    """The addresses `host` resolves to (empty when it does not resolve now)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return frozenset()
    return frozenset(str(info[4][0]) for info in infos)


def tcp_nodelay(port: int, addresses: frozenset[str]) -> int:
    """Set `TCP_NODELAY` on this process's TCP sockets connected to `port` at one of
    `addresses` (any address when empty); how many were set."""
    try:
        names = os.listdir(_FDS)
    except OSError:
        return 0
    done = 0
    for name in names:
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except (ValueError, OSError):
            continue  # not a number, or closed since listed
        with contextlib.closing(sock), contextlib.suppress(OSError):
            if sock.type != socket.SOCK_STREAM or sock.family not in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                continue
            peer = sock.getpeername()
            if peer[1] == port and (not addresses or peer[0] in addresses):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                done += 1
    return done
