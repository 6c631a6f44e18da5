"""One pipelined connection to one Redis server: the session store's hot path.

Why not redis-py's client here: a USSD step makes two Redis calls, and redis-py's asyncio
client spends about 60 µs of CPU on each (pool checkout, retry wrapper, two timers, a
StreamReader round, command-name decorators) — measured with py-spy under `bench/ussd.py`,
it was the largest single cost of a step. `RedisLink` keeps what matters and drops the
rest: hiredis (the C parser redis-py uses) packs commands and parses replies; commands
from all concurrent requests share one connection, queued in order (Redis answers in
order), and everything written during one event-loop turn leaves in one `write`. One
watchdog timer per connection, not one per call, enforces the reply timeout.

It speaks only what the session store needs (any command, RESP2 replies, AUTH and SELECT
from the URL) to a plain TCP or unix-socket server. TLS, Sentinel and Cluster URLs keep
using redis-py (hotline.store.redisurl); so does everything off the request path.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

from hotline.store.linkerrors import RedisLinkError, RedisReplyError

__all__ = ["LinkAddress", "RedisLink", "RedisLinkError", "RedisReplyError", "link_address"]

LINK_SCHEMES = ("redis", "unix")


@dataclass(frozen=True, slots=True)
class LinkAddress:
    """Where and as whom to connect: what a `redis://` or `unix://` URL names."""

    host: str | None = None
    port: int = 6379
    path: str | None = None  # a unix socket instead of host:port
    username: str | None = None
    password: str | None = None
    db: int = 0


def link_address(url: str) -> LinkAddress | None:
    """The address of a `redis://` or `unix://` URL; None for any other scheme.

    Raises `ValueError` for a URL of those schemes that names no usable server.
    """
    parts = urlsplit(url)
    if parts.scheme not in LINK_SCHEMES:
        return None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// URL needs a socket path")
        return LinkAddress(
            path=unquote(parts.path), username=username, password=password, db=_db(query.get("db"))
        )
    db_text = parts.path.lstrip("/") or query.get("db")
    return LinkAddress(
        host=parts.hostname or "localhost",
        port=parts.port or 6379,
        username=username,
        password=password,
        db=_db(db_text),
    )


def _db(text: str | None) -> int:
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()):  # isdigit alone admits ², int() refuses it
        raise ValueError(f"database must be a number, not {text[:20]!r}")
    return int(text)


def _pack(args: tuple[str | bytes | int, ...]) -> bytes:
    """One command in RESP, packed by hiredis (in C)."""
    # hiredis' stub declares a one-element tuple; it takes any number of arguments.
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]
    return packed


class _Waiter:
    __slots__ = ("deadline", "future")

    def __init__(self, future: asyncio.Future[Any], deadline: float) -> None:
        self.future = future
        self.deadline = deadline


class _Connection:
    """The protocol side: bytes out in batches, replies in, matched to waiters in order.

    An `asyncio.Protocol` by its methods, not by inheritance: a compiled class (setup.py)
    cannot inherit from a Python one, and the event loop only calls the methods.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._reader = hiredis.Reader(replyError=RedisReplyError)  # type: ignore[arg-type]
        self._transport: asyncio.Transport | None = None
        self._waiters: deque[_Waiter] = deque()
        self._outgoing: list[bytes] = []
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Small requests and replies: Nagle plus delayed ACKs would stall them ~40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A peer that vanished without a FIN is noticed while the connection is idle.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                waiter = self._waiters.popleft()
                if not waiter.future.done():
                    if isinstance(reply, RedisReplyError):
                        waiter.future.set_exception(reply)
                    else:
                        waiter.future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:
            # Garbage from the server, or a reply nobody asked for: the stream is lost.
            self.abort(RedisLinkError(f"protocol error: {type(exc).__name__}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort(RedisLinkError("connection closed by the server", reconnect=True))

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def pause_writing(self) -> None:
        pass  # one write a loop turn of small commands: nothing to hold back

    def resume_writing(self) -> None:
        pass

    # -- used by RedisLink

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Queue one packed command; the future gets its reply."""
        if self.closed:
            raise RedisLinkError("connection is closed", reconnect=True)
        future = self._loop.create_future()
        self._waiters.append(_Waiter(future, self._loop.time() + self._timeout))
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.append(packed)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(self._waiters[0].deadline, self._check)
        return future

    def abort(self, error: RedisLinkError) -> None:
        """Close the connection and fail every command still waiting for a reply."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.closed = True
        if self._transport is not None:
            self._transport.abort()
        self._outgoing.clear()
        while self._waiters:
            future = self._waiters.popleft().future
            if not future.done():
                future.set_exception(error)

    def _flush(self) -> None:
        # Everything queued during the last loop turn leaves in one write (one syscall).
        if self._outgoing and self._transport is not None and not self.closed:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def _check(self) -> None:
        self._watchdog = None
        if not self._waiters:
            return
        head = self._waiters[0]
        if head.deadline <= self._loop.time():
            # Replies come in order: if the oldest is late, the server or the path to it is
            # stuck, and the replies still owed could never be matched up if it wakes again.
            self.abort(RedisLinkError(f"no reply within {self._timeout:g}s"))
            return
        self._watchdog = self._loop.call_at(head.deadline, self._check)


class RedisLink:
    """A Redis client over one pipelined connection, reconnecting on the next call after a
    failure. Every failure to talk to the server raises `RedisLinkError`."""

    def __init__(
        self, address: LinkAddress, *, timeout: float = 0.5, connect_timeout: float = 0.5
    ) -> None:
        self.address = address
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None

    async def execute(self, *args: str | bytes | int) -> Any:
        """Run one command and return its reply (bytes, int, list, None …)."""
        (reply,) = await self.execute_many(args)
        return reply

    async def execute_many(self, *commands: tuple[str | bytes | int, ...]) -> list[Any]:
        """Run several commands in one write; replies in order, the first error raised.

        A connection found closed (the server restarted, an idle connection was dropped) is
        replaced and the commands sent once more on the new one — the session store's
        commands are idempotent. A timeout is not retried: the caller has waited enough.
        """
        packed = [_pack(args) for args in commands]
        try:
            return await self._send(await self._ready(), packed)
        except RedisLinkError as exc:
            if not exc.reconnect:
                raise
        return await self._send(await self._ready(), packed)

    @staticmethod
    async def _send(connection: _Connection, packed: list[bytes]) -> list[Any]:
        futures = [connection.send(command) for command in packed]
        replies: list[Any] = []
        error: BaseException | None = None
        for future in futures:  # await every reply, so no error goes unretrieved
            try:
                replies.append(await future)
            except (RedisLinkError, RedisReplyError) as exc:
                error = error or exc
        if error is not None:
            raise error
        return replies

    async def _ready(self) -> _Connection:
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        return connection

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            self._connection.abort(RedisLinkError("client closed"))
            self._connection = None

    async def _connect(self) -> _Connection:
        # Concurrent callers share one connection attempt instead of opening one each.
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._open())
        try:
            connection = await asyncio.shield(self._connecting)
        except RedisLinkError:
            raise
        except (TimeoutError, OSError) as exc:
            raise RedisLinkError(f"cannot connect: {type(exc).__name__}") from exc
        return connection

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        address = self.address
        connection = _Connection(loop, self._timeout)
        factory = cast("Callable[[], asyncio.Protocol]", lambda: connection)
        async with asyncio.timeout(self._connect_timeout):
            if address.path is not None:
                await loop.create_unix_connection(factory, address.path)
            else:
                await loop.create_connection(factory, address.host or "localhost", address.port)
        try:
            hello: list[tuple[str | bytes | int, ...]] = []
            if address.password is not None:
                user = (address.username,) if address.username else ()
                hello.append(("AUTH", *user, address.password))
            if address.db:
                hello.append(("SELECT", address.db))
            for args in hello:
                await connection.send(_pack(args))
        except RedisReplyError as exc:
            connection.abort(RedisLinkError("handshake refused"))
            # The reply names the problem (NOAUTH, WRONGPASS, DB index) but never the secret.
            raise RedisLinkError(f"handshake refused: {str(exc)[:80]}") from None
        self._connection = connection
        return connection
