"""docker-compose's Redis keeps sessions across a crash; the tests' Redis keeps nothing."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
import yaml

from tests.conftest import ROOT, RedisServer, free_port


def _compose_redis_args(data_dir: Path) -> list[str]:
    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["redis"][
        "command"
    ]
    assert command[0] == "redis-server"
    args = list(command[1:])
    args[args.index("--dir") + 1] = str(data_dir)  # the container's /data volume
    return args


def _start(args: list[str], port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (make test installs it on Debian)")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.ping():
                break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.02)
    client.close()
    return proc


def test_compose_redis_keeps_sessions_across_a_crash(tmp_path: Path) -> None:
    args = _compose_redis_args(tmp_path)
    port = free_port()
    proc = _start(args, port)
    try:
        client = redis.Redis(port=port)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        assert client.config_get("save")["save"] != ""
        client.set("hotline:compose:sess:ivr:CA-queue", b'{"state":"queue"}', ex=3600)
        client.close()
        time.sleep(1.5)  # everysec: the write is on disk within a second
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: no shutdown save
        proc.wait(timeout=10)
    proc = _start(args, port)
    try:
        client = redis.Redis(port=port)
        assert client.get("hotline:compose:sess:ivr:CA-queue") == b'{"state":"queue"}'
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_tests_redis_is_ephemeral(redis_server: RedisServer) -> None:
    client = redis.Redis(port=redis_server.port)
    try:
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert client.config_get("save")["save"] == ""
    finally:
        client.close()
