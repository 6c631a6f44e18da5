"""What a newcomer types from the README, run as they would: in a shell, from the checkout.

`make run PORT=… HOST=…` serves where it is told; the README's ledger block works as
written in a fresh shell whose PATH does not know `hotline` yet.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import STORE_FILES, free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"

needs_make_setup = pytest.mark.skipif(
    not (VENV / "bin" / "activate").exists() or shutil.which("make") is None,
    reason="needs the checkout's .venv (make setup) and make",
)


def _bare_env(tmp_path: Path) -> dict[str, str]:
    """A new login's environment: no virtualenv on the PATH, private stores."""
    return {
        "HOME": str(tmp_path),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "COLUMNS": "120",
        # Every embedded store in the test's directory: ./var is the checkout's own.
        **{name: str(tmp_path / file) for name, file in STORE_FILES.items()},
    }


def _readme_block(containing: str) -> str:
    """The README's ```sh block that contains `containing`, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"^```sh\n(.*?)^```", readme, flags=re.S | re.M):
        if containing in block:
            return str(block)
    raise AssertionError(f"no ```sh block in README.md contains {containing!r}")


@needs_make_setup
def test_readme_ledger_commands_work_as_written_in_a_fresh_shell(tmp_path: Path) -> None:
    env = _bare_env(tmp_path)
    assert (
        subprocess.run(
            ["bash", "-c", "command -v hotline"], env=env, capture_output=True, check=False
        ).returncode
        != 0
    ), "this shell must not know `hotline` before the README's steps"
    block = _readme_block("hotline ledger list")
    done = subprocess.run(
        ["bash", "-e", "-c", block],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "command not found" not in done.stderr
    assert "13800138000" in done.stdout and "13800138005" in done.stdout  # the list


@needs_make_setup
def test_make_run_listens_on_port_and_host(tmp_path: Path) -> None:
    port = free_port()
    env = _bare_env(tmp_path)
    proc = subprocess.Popen(
        # `-o`: never rebuild the checkout's virtualenv from inside a test (a stale stamp
        # would recreate it with whatever python3 this bare PATH finds first).
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "run",
            f"PORT={port}",
            "HOST=127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "make run did not listen on PORT"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/simulator", timeout=5) as r:
            assert r.status == 200  # make run turns the web phone on
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/simulator" in out
    assert ". .venv/bin/activate" in out  # how to reach the CLI, said where it is needed
