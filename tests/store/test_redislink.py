"""`hotline.store.redislink`: the pipelined Redis connection of the session store, against real
redis-servers (private, on free ports) and against loopback servers that misbehave."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from hotline.base.errors import SessionStoreUnavailable
from hotline.store.redislink import (
    LinkAddress,
    RedisLink,
    RedisLinkError,
    RedisReplyError,
    link_address,
)
from hotline.store.sessions import RedisSessionStore
from tests.conftest import RedisServer, free_port


@pytest.fixture
async def link(redis_url: str) -> AsyncIterator[RedisLink]:
    address = link_address(redis_url)
    assert address is not None
    client = RedisLink(address)
    yield client
    await client.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6380/2", LinkAddress(host="127.0.0.1", port=6380, db=2)),
        ("redis://redis", LinkAddress(host="redis")),
        ("redis://:s%40cret@h:1/0", LinkAddress(host="h", port=1, password="s@cret")),
        ("redis://app:pw@h/3", LinkAddress(host="h", username="app", password="pw", db=3)),
        ("redis://h?db=4", LinkAddress(host="h", db=4)),
        ("redis://[::1]:7000", LinkAddress(host="::1", port=7000)),
        ("unix:///run/redis.sock?db=1", LinkAddress(path="/run/redis.sock", db=1)),
        ("rediss://h:6379/0", None),
        ("redis+sentinel://s1:26379/main", None),
        ("redis+cluster://n1:7000", None),
    ],
)
def test_link_address(url: str, expected: LinkAddress | None) -> None:
    assert link_address(url) == expected


@pytest.mark.parametrize("url", ["redis://h/x", "redis://h?db=-1", "unix://"])
def test_link_address_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        link_address(url)


async def test_commands_and_replies(link: RedisLink) -> None:
    assert await link.execute("PING") == b"PONG"
    assert await link.execute("SET", "k", b"\x00bytes\xff", "EX", 60) == b"OK"
    assert await link.execute("MGET", "k", "missing") == [b"\x00bytes\xff", None]
    assert await link.execute("GET", "missing") is None
    assert 0 < await link.execute("TTL", "k") <= 60
    assert await link.execute("SET", "n", 41) == b"OK"
    assert await link.execute("INCR", "n") == 42
    assert await link.execute_many(("SET", "a", "1"), ("SET", "b", "2"), ("MGET", "a", "b")) == [
        b"OK",
        b"OK",
        [b"1", b"2"],
    ]


async def test_an_error_reply_raises_and_the_connection_stays_usable(link: RedisLink) -> None:
    await link.execute("SET", "text", "x")
    with pytest.raises(RedisReplyError, match="WRONGTYPE"):
        await link.execute("LPUSH", "text", "y")
    with pytest.raises(RedisReplyError, match="unknown command"):
        await link.execute("NOSUCHCOMMAND")
    assert await link.execute("GET", "text") == b"x"


async def test_concurrent_commands_get_their_own_replies(link: RedisLink) -> None:
    """Hundreds of tasks share one connection; each reply reaches the task that asked."""

    async def one(n: int) -> bytes:
        await link.execute("SET", f"key:{n}", f"value:{n}")
        value: bytes = await link.execute("GET", f"key:{n}")
        return value

    values = await asyncio.gather(*(one(n) for n in range(500)))
    assert values == [f"value:{n}".encode() for n in range(500)]


async def test_a_cancelled_caller_does_not_shift_the_replies(link: RedisLink) -> None:
    await link.execute("SET", "x", "1")
    await link.execute("SET", "y", "2")
    first = asyncio.ensure_future(link.execute("GET", "x"))
    second = asyncio.ensure_future(link.execute("GET", "y"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == b"2"
    assert await link.execute("GET", "x") == b"1"


async def test_auth_and_database_from_the_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, password="pässword")
    server.start()
    try:
        url = f"redis://:p%C3%A4ssword@127.0.0.1:{server.port}/3"
        address = link_address(url)
        assert address is not None
        client = RedisLink(address)
        await client.execute("SET", "where", "db3")
        await client.close()
        check = redis.Redis(port=server.port, password="pässword", db=3)
        assert check.get("where") == b"db3"
        check.close()

        wrong = link_address(f"redis://:nope@127.0.0.1:{server.port}/0")
        assert wrong is not None
        refused = RedisLink(wrong)
        with pytest.raises(RedisLinkError, match="handshake refused") as caught:
            await refused.execute("PING")
        assert "nope" not in str(caught.value)
        await refused.close()
    finally:
        server.stop()


async def test_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    server = RedisServer(tmp_path, "--unixsocket", str(sock))
    server.start()
    try:
        address = link_address(f"unix://{sock}")
        assert address is not None
        client = RedisLink(address)
        assert await client.execute("PING") == b"PONG"
        await client.close()
    finally:
        server.stop()


async def test_server_gone_and_back(stoppable_redis: RedisServer) -> None:
    address = link_address(stoppable_redis.url)
    assert address is not None
    client = RedisLink(address)
    await client.execute("SET", "k", "v")
    stoppable_redis.stop()
    started = time.monotonic()
    with pytest.raises(RedisLinkError):
        await client.execute("GET", "k")
    with pytest.raises(RedisLinkError):  # refused at once, no waiting for a timeout
        await client.execute("GET", "k")
    assert time.monotonic() - started < 0.5
    stoppable_redis.start()
    assert await client.execute("PING") == b"PONG"
    await client.close()


async def test_a_restarted_server_is_reconnected_to_without_an_error(
    stoppable_redis: RedisServer,
) -> None:
    """The connection the link holds died with the server; the next call opens a new one."""
    address = link_address(stoppable_redis.url)
    assert address is not None
    client = RedisLink(address)
    assert await client.execute("SET", "k", "v") == b"OK"
    stoppable_redis.stop()
    stoppable_redis.start()
    assert await client.execute("SET", "k", "again") == b"OK"
    assert await client.execute_many(("GET", "k"), ("GET", "none")) == [b"again", None]
    await client.close()


async def _misbehaving_server(
    answer: Callable[[bytes], bytes | None],
) -> tuple[asyncio.Server, LinkAddress]:
    """A loopback server that reads commands and answers with `answer(data)` (None: silence)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            reply = answer(data)
            if reply is not None:
                writer.write(reply)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, LinkAddress(host="127.0.0.1", port=port)


async def test_a_silent_server_times_out_every_waiter_at_once() -> None:
    server, address = await _misbehaving_server(lambda data: None)
    client = RedisLink(address, timeout=0.2)
    started = time.monotonic()
    results = await asyncio.gather(
        *(client.execute("GET", f"k{n}") for n in range(20)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    assert all(isinstance(r, RedisLinkError) for r in results), results
    assert "no reply within 0.2s" in str(results[0])
    assert 0.15 < elapsed < 1.0
    await client.close()
    server.close()
    await server.wait_closed()


async def test_garbage_from_the_server_fails_the_call() -> None:
    server, address = await _misbehaving_server(lambda data: b"?what\r\n")
    client = RedisLink(address)
    with pytest.raises(RedisLinkError, match="protocol error"):
        await client.execute("PING")
    await client.close()
    server.close()
    await server.wait_closed()


async def test_an_unreachable_server_is_unavailable_to_the_store() -> None:
    store = RedisSessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nobody listens
    with pytest.raises(SessionStoreUnavailable):
        await store.load("hotline:dev:sess:ussd:x", "hotline:dev:sub:y")
    with pytest.raises(SessionStoreUnavailable):
        await store.save("hotline:dev:sess:ussd:x", b"{}", 60, "hotline:dev:sub:y", None)
    assert await store.ping() is False
    await store.close()
