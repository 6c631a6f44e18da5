"""A PostgreSQL server of the test's own, which the test may stop and start again.

The shared cluster of `tests.store.pg` serves every session on the machine: stopping it
would break theirs. This one is `initdb`'d in a fresh directory (owned by `postgres`,
as the server refuses to run as root), listens on a free port of 127.0.0.1 with trust
authentication, and is stopped (`immediate`) and removed afterwards. It needs root and
Debian's PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin`); elsewhere the test
skips, saying why.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

__all__ = ["PrivatePostgres", "private_postgres"]

_USER = "postgres"


@dataclass
class PrivatePostgres:
    bindir: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{_USER}@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", _USER, "--", str(self.bindir / "pg_ctl"), "-D", str(self.data),
             "-w", "-t", "60", *args],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} "
            "-c fsync=off -c full_page_writes=off"
        )
        self._ctl("-l", str(self.data / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")


def private_postgres() -> Iterator[PrivatePostgres]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if os.geteuid() != 0 or not found or not shutil.which("runuser"):
        pytest.skip("no private PostgreSQL: needs root and /usr/lib/postgresql/*/bin")
    bindir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
    data = root / "data"
    try:
        shutil.chown(root, _USER)
        subprocess.run(
            ["runuser", "-u", _USER, "--", str(bindir / "initdb"), "-D", str(data),
             "-A", "trust", "-U", _USER, "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError, LookupError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"no private PostgreSQL ({type(exc).__name__})")
    server = PrivatePostgres(bindir, data, free_port())
    try:
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):  # the test stopped it
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
