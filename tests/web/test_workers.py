"""`hotline serve --workers 2` as a real subprocess: shared port, SIGHUP, crash, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.web.conftest import PHONE, ROOT, at_form, sample

ADMIN = "workers-admin-token-0123"


def _reloaded_pids(svc: Service) -> list[object]:
    return [line.get("pid") for line in svc.log_lines() if line.get("msg") == "flows reloaded"]


class Service:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get_json(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(self.url(path), timeout=5) as response:
            data: dict[str, object] = json.loads(response.read())
            return data

    def post(self, path: str, form: dict[str, str]) -> str:
        body = urllib.parse.urlencode(form).encode()
        with urllib.request.urlopen(self.url(path), data=body, timeout=5) as response:
            return str(response.read().decode("utf-8"))

    def pids(self, want: int, exclude: int = 0, within: float = 60.0) -> set[int]:
        """Worker pids seen over fresh connections (the kernel spreads them)."""
        seen: set[int] = set()
        deadline = time.monotonic() + within
        while len(seen) < want and time.monotonic() < deadline:
            try:
                pid = int(str(self.get_json("/healthz")["pid"]))
            except (urllib.error.URLError, OSError):
                # Not serving yet: refused, reset, or accepted into the backlog of a worker
                # still loading its flows (a read timeout on a loaded machine).
                pid = 0
            if pid and pid != exclude:
                seen.add(pid)
            time.sleep(0.02)
        return seen

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for raw in self.log.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        return lines


@pytest.fixture
def service(tmp_path: Path, redis_url: str) -> Iterator[Service]:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "HOTLINE_REDIS_URL": redis_url,
        "HOTLINE_FLOWS_DIR": str(ROOT / "flows"),
        "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
        "HOTLINE_BALANCE__LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
        "HOTLINE_PSEUDONYM_SECRET": "workers-test-secret",
        "HOTLINE_JSON_LOGS": "true",
        "HOTLINE_SECURITY__ADMIN_TOKEN": ADMIN,
        # The in-flight check stalls Redis 0.4 s: far from the reply timeout even when
        # the machine is busy (at the default 0.5 s a starved CPU turned it into an apology).
        "HOTLINE_REDIS_TIMEOUT": "5",
        "TMPDIR": str(tmp_path),  # the supervisor's metrics directory goes here
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hotline",
                "serve",
                "--workers",
                "2",
                "--port",
                str(port),
                "--shutdown-timeout",
                "10",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    svc = Service(proc, port, log)
    deadline = time.monotonic() + 120  # a busy machine starts two workers slowly
    while time.monotonic() < deadline:
        try:
            svc.get_json("/healthz")
            break
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("service did not start: " + log.read_text())
    yield svc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()  # the workers get SIGTERM from the kernel (parent-death signal)
            proc.wait(10)


def _stall_redis(url: str, seconds: float) -> None:
    client = redis.Redis.from_url(url)
    client.eval(
        "local t = redis.call('TIME') local start = t[1] * 1e6 + t[2] "
        "while true do local n = redis.call('TIME') "
        "if n[1] * 1e6 + n[2] - start > tonumber(ARGV[1]) then break end end return 1",
        0,
        int(seconds * 1e6),
    )
    client.close()


def _wait_dead(pid: int, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (FileNotFoundError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)
    pytest.fail(f"worker {pid} did not die")


def _session(svc: Service, session: str) -> list[str]:
    return [svc.post("/ussd/africastalking", at_form(session, text)) for text in ("", "1")]


def test_two_workers_share_the_port_reload_survive_a_crash_and_stop_gracefully(
    service: Service, redis_url: str
) -> None:
    pids = service.pids(2)
    assert len(pids) == 2, "both workers should answer on the one port"

    # Sessions continue whichever worker gets the next request (state is in Redis).
    for i in range(6):
        first, last = _session(service, f"w-{i}")
        assert first.startswith("CON ")
        assert last.startswith("END ")

    # Whichever worker answers the scrape, /metrics counts every worker's requests.
    for _ in range(4):
        with urllib.request.urlopen(service.url("/metrics"), timeout=5) as response:
            text = response.read().decode()
        total = sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "hotline_requests_total"
        )
        assert total == 12
        assert sample(text, "hotline_sessions_started_total", channel="ussd", flow="balance") == 6

    # SIGHUP to the supervisor reloads flows in every worker …
    os.kill(service.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not set(_reloaded_pids(service)) >= pids:
        time.sleep(0.1)
    assert set(_reloaded_pids(service)) >= pids
    # … and so does the admin endpoint, whichever worker takes the request.
    before = len(_reloaded_pids(service))
    request = urllib.request.Request(
        service.url("/admin/reload"),
        method="POST",
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["workers"] == "all"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not set(_reloaded_pids(service)[before:]) >= pids:
        time.sleep(0.1)
    assert set(_reloaded_pids(service)[before:]) >= pids

    # Kill one worker outright: the other keeps serving, the supervisor replaces it.
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    # Connections the kernel had already queued on the victim's socket die with it (an
    # SO_REUSEPORT fact, measured in bench/scale.py); once its listening socket is gone
    # (shortly after the process: give the kernel a moment) new ones go to the live worker.
    _wait_dead(victim)
    time.sleep(0.5)
    for i in range(10):
        first, last = _session(service, f"after-kill-{i}")
        assert first.startswith("CON ") and last.startswith("END ")
    replaced = service.pids(2, exclude=victim)
    assert len(replaced) == 2 and victim not in replaced

    # A request in flight when SIGTERM arrives still gets its answer: Redis is made to
    # stall for 0.4 s (a busy Lua script), so the request is inside the engine when the
    # workers are told to stop.
    stall = threading.Thread(target=_stall_redis, args=(redis_url, 0.4))
    body = urllib.parse.urlencode(at_form("in-flight", "", PHONE)).encode()
    head = (
        f"POST /ussd/africastalking HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        stall.start()
        time.sleep(0.05)
        sock.sendall(head + body)
        time.sleep(0.1)
        service.proc.send_signal(signal.SIGTERM)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    stall.join()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"CON " in answer
    assert service.proc.wait(20) == 0
    slow = [
        line
        for line in service.log_lines()
        if line.get("logger") == "hotline.access" and float(str(line.get("latency_ms"))) >= 250
    ]
    assert slow and slow[-1]["outcome"] == "continue", "the stalled request was answered normally"
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        service.get_json("/healthz")


def test_workers_do_not_outlive_a_killed_supervisor(service: Service) -> None:
    pids = service.pids(2)
    assert len(pids) == 2
    service.proc.kill()
    service.proc.wait(10)
    for pid in pids:
        _wait_dead(pid, within=20)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        service.get_json("/healthz")


def test_gunicorn_aiohttp_worker_alternative(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HOTLINE_REDIS_URL": redis_url,
        "HOTLINE_FLOWS_DIR": str(ROOT / "flows"),
        "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
        "HOTLINE_BALANCE__LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
        "HOTLINE_JSON_LOGS": "true",
    }
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "hotline.web.workers:gunicorn_app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--worker-class",
                "aiohttp.GunicornUVLoopWebWorker",
                "--graceful-timeout",
                "10",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    svc = Service(proc, port, log)
    try:
        assert len(svc.pids(2)) == 2, log.read_text()
        first, last = _session(svc, "gunicorn-1")
        assert first.startswith("CON ") and last.startswith("END ")
    finally:
        proc.terminate()
        assert proc.wait(20) == 0


def test_a_taken_port_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "HOTLINE_FLOWS_DIR": str(ROOT / "flows"),
            "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
            "HOTLINE_BALANCE__LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
            "HOTLINE_IVR__WARM_PROMPTS": "false",
            "HOTLINE_JSON_LOGS": "true",
        }
        program = "import sys; from hotline.cli import main; sys.exit(main())"
        done = subprocess.run(
            [sys.executable, "-c", program, "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr, done.stderr
    assert f"hotline: cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "worker listening" not in done.stderr  # logged only once the socket is bound
