"""Shared fixtures: a private redis-server on a free port, settings for tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hotline.base.compiled import compiled_modules, stale_modules

ROOT = Path(__file__).resolve().parent.parent


def pytest_report_header() -> str:
    compiled = compiled_modules(ROOT)
    if not compiled:
        return "hotline: pure Python (setup.py compiled nothing)"
    return f"hotline: {len(compiled)} modules compiled by mypyc (setup.py)"


def pytest_sessionstart(session: pytest.Session) -> None:
    # Python imports a compiled module before its source: tests of an edited module
    # would run the old code.
    stale = stale_modules(ROOT)
    if stale:
        pytest.exit(
            f"compiled modules older than their source: {', '.join(stale)}; "
            "run `make setup` (or `.venv/bin/pip install -e . --no-deps`) to build them again",
            returncode=4,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A private redis-server process that tests may stop and start again."""

    def __init__(self, workdir: Path, *extra: str, password: str | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.extra = extra  # more redis-server options, e.g. ("--unixsocket", path)
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (make test installs it on Debian)")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *(("--requirepass", self.password) if self.password else ()),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def flush(self) -> None:
        client = redis.Redis(port=self.port, password=self.password)
        client.flushall()
        client.close()


#: The embedded stores whose defaults are files under ./var, shared by every test, every
#: run and every xdist worker: a reminder subscription or queued SMS left there by one test
#: reached the next. Each test gets its own, named as the tests name them in `tmp_path`.
STORE_FILES = {
    "HOTLINE_BALANCE__LEDGER_PATH": "ledger.sqlite3",
    "HOTLINE_SMS__OUTBOX_PATH": "outbox.sqlite3",
    "HOTLINE_PLANS__STORE_PATH": "plans.sqlite3",
    "HOTLINE_API__DB_PATH": "api.sqlite3",
    "HOTLINE_REMINDERS__DATABASE_PATH": "reminders.sqlite3",
}


@pytest.fixture(autouse=True)
def _private_stores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The embedded stores in this test's directory, not ./var (the environment beats a
    config file, so these are the very paths tests give explicitly: `tmp_path / NAME`)."""
    for name, file in STORE_FILES.items():
        if name not in os.environ:
            monkeypatch.setenv(name, str(tmp_path / file))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for the whole run (or HOTLINE_TEST_REDIS_URL's, not stoppable)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean database on the private server, per test."""
    external = os.environ.get("HOTLINE_TEST_REDIS_URL")
    if external:
        client = redis.Redis.from_url(external)
        client.flushdb()
        client.close()
        yield external
        return
    redis_server.flush()
    yield redis_server.url


@pytest.fixture
def stoppable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that stop and restart it."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
