"""Sessions over Redis Sentinel and Redis Cluster URLs, against real local processes."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from hotline.store.redisurl import RedisTarget, parse_redis_url
from hotline.store.sessions import RedisSessionStore
from hotline.web.app import create_app
from tests.conftest import RedisServer, free_port
from tests.web.conftest import AT, at_form


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", None),
        (
            "redis+sentinel://:pw@s1:26379,s2/mymaster/2?sentinel_password=spw",
            RedisTarget(
                "sentinel",
                (("s1", 26379), ("s2", 26379)),
                password="pw",
                service="mymaster",
                db=2,
                options={"sentinel_password": "spw"},
            ),
        ),
        (
            "rediss+cluster://u:p@n1:7000,[::1]:7001",
            RedisTarget(
                "cluster", (("n1", 7000), ("::1", 7001)), tls=True, username="u", password="p"
            ),
        ),
    ],
)
def test_parse_redis_url(url: str, expected: RedisTarget | None) -> None:
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1:26379",
        "redis+cluster://n1:7000/0",
        "redis+cluster://n1:x",
        "redis+sentinel:///mymaster",
    ],
)
def test_bad_redis_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_redis_url(url)


def _wait(check: Any, what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.exceptions.RedisError:
            pass
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def sentinel_url(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    redis_server.flush()
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor hotline 127.0.0.1 {redis_server.port} 1\n"
        "sentinel down-after-milliseconds hotline 5000\n"
    )
    proc = subprocess.Popen(
        [str(shutil.which("redis-server")), str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    _wait(lambda: client.sentinel_get_master_addr_by_name("hotline"), "sentinel")
    client.close()
    yield f"redis+sentinel://127.0.0.1:{port}/hotline/0"
    proc.terminate()
    proc.wait(10)


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) also exists."""
    for _ in range(200):
        port = free_port()
        if port < 55000:
            return port
    pytest.fail("no free port below 55000")


@pytest.fixture
def cluster_url(tmp_path: Path) -> Iterator[str]:
    ports = [_cluster_port() for _ in range(3)]
    procs = []
    for port in ports:
        node_dir = tmp_path / str(port)
        node_dir.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    str(shutil.which("redis-server")),
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(node_dir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        for port in ports:
            node = redis.Redis(port=port)
            _wait(node.ping, f"cluster node {port}")
            node.close()
        subprocess.run(
            [
                str(shutil.which("redis-cli")),
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        first = redis.Redis(port=ports[0])
        _wait(lambda: first.cluster("info")["cluster_state"] == "ok", "cluster state ok")
        first.close()
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:2])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


async def _round_trip(url: str) -> None:
    store = RedisSessionStore.from_url(url)
    try:
        assert await store.ping()
        # Keys in different hash slots, in one pipelined read and write.
        await store.save(
            "hotline:t:sess:ussd:a", b'{"x":1}', 60, "hotline:t:sub:p1", {"lang": "en"}
        )
        raw, prefs = await store.load("hotline:t:sess:ussd:a", "hotline:t:sub:p1")
        assert raw == b'{"x":1}'  # bytes as stored; SessionRecord.loads reads them
        assert prefs == {"lang": "en"}
    finally:
        await store.close()


async def _session(aiohttp_client: Any, settings_factory: Any, url: str) -> None:
    client = await aiohttp_client(create_app(settings_factory(redis_url=url)))
    first = await client.post(AT, data=at_form("url-1"))
    assert (await first.text()).startswith("CON ")
    last = await client.post(AT, data=at_form("url-1", "1"))
    assert (await last.text()).startswith("END ")
    ready = await client.get("/readyz")
    assert ready.status == 200


async def test_sentinel_url(sentinel_url: str, aiohttp_client: Any, settings_factory: Any) -> None:
    await _round_trip(sentinel_url)
    await _session(aiohttp_client, settings_factory, sentinel_url)


async def test_cluster_url(cluster_url: str, aiohttp_client: Any, settings_factory: Any) -> None:
    await _round_trip(cluster_url)
    await _session(aiohttp_client, settings_factory, cluster_url)
