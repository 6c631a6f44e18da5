"""Process plumbing shared by the load scripts: ports, pinned subprocesses, CPU time."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "cpu_seconds",
    "free_port",
    "hotline_env",
    "pin",
    "process",
    "redis_server",
    "wait_port",
]

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def hotline_env(redis_url: str, workdir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a `hotline serve` under load: this checkout's flows and prompts,
    ledger and audio cache in `workdir`, Redis sessions, no speech warm-up competing for the
    CPU, and the rate limits out of the way (the load replays five numbers thousands of times
    a second; the per-gateway limit, 2000/s by default, would answer busy). `overrides` are
    further `HOTLINE_*` variables."""
    return {
        **os.environ,
        "HOTLINE_REDIS_URL": redis_url,
        "HOTLINE_FLOWS_DIR": str(ROOT / "flows"),
        "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
        "HOTLINE_BALANCE__LEDGER_PATH": str(workdir / "ledger.sqlite3"),
        "HOTLINE_BALANCE__SUBSCRIBER_RATE": "1000000/second",
        "HOTLINE_SECURITY__SUBSCRIBER_RATE": "1000000/second",
        "HOTLINE_SECURITY__GATEWAY_RATE": "1000000/second",
        "HOTLINE_PSEUDONYM_SECRET": "bench-secret",
        "HOTLINE_LOG_LEVEL": "WARNING",
        "HOTLINE_IVR__WARM_PROMPTS": "false",
        "HOTLINE_IVR__AUDIO_DIR": str(workdir / "audio"),
        **overrides,
    }


def pin(cpu: int) -> None:
    if (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], port: int | None, *, cpu: int) -> Iterator[int]:
    proc = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: pin(cpu),  # affinity only: safe between fork and exec
    )
    try:
        if port is not None:
            wait_port(port, proc)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode not in (0, -signal.SIGTERM) and proc.stderr is not None:
            sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
        if proc.stderr is not None:
            proc.stderr.close()


def redis_server(port: int, workdir: Path) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    return [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(workdir),
    ]  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
