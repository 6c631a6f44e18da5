"""`hotline simulate` as a user runs it: a subprocess, keys typed on stdin."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from hotline.base.config import UssdSettings
from hotline.cli.simulate import screen_budget

ROOT = Path(__file__).resolve().parents[2]


def _simulate(keys: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "hotline", "simulate", *args],
        input=keys,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def test_dial_navigate_balance_and_hang_up() -> None:
    done = _simulate("5\n0\nh\n1\n\nq\n", "--msisdn", "+8613800138000")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "dialling *100# as +8613800138000" in out
    assert out.count("话费查询") == 3  # dial, back from the language menu, dial again
    assert "请选择语言" in out
    assert "history: 5 → 0" in out
    assert "您的话费余额为12.50元。" in out
    assert "64/80 UCS-2" in out  # the main menu's share of a Chinese screen
    assert "END" in out and out.rstrip().endswith("hung up")
    assert "Traceback" not in done.stderr


def test_end_of_input_hangs_up_and_a_dead_url_is_one_line() -> None:
    assert _simulate("").returncode == 0
    done = _simulate("", "--url", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert "hotline simulate: POST http://127.0.0.1:9/ussd/africastalking" in done.stdout
    assert "Traceback" not in done.stderr + done.stdout


def test_screen_budget_counts_like_a_handset() -> None:
    ussd = UssdSettings()
    assert screen_budget("Balance 12.50", ussd) == (13, 182, "GSM-7")
    assert screen_budget("a€", ussd) == (3, 182, "GSM-7")  # € is an escape: two septets
    assert screen_budget("余额😀", ussd) == (4, 80, "UCS-2")  # the emoji is a surrogate pair


async def _misbehaving(request: web.Request) -> web.StreamResponse:
    """A USSD endpoint that answers by the last key pressed, as no hotline should."""
    form = await request.post()
    last = str(form["text"]).rsplit("*", 1)[-1]
    if last == "":
        return web.Response(text="CON Broken service\n1.bye")
    if last == "4":
        return web.Response(status=400, text="text may only hold the digits 0-9, * and #")
    if last == "5":
        return web.Response(status=500, text="<html><body>500 oops</body></html>")
    if last == "3":
        return web.Response(status=403)
    if last == "7":
        return web.Response(text="hello")
    if last == "6":
        return web.Response(text="")
    if last == "8":
        assert request.transport is not None
        request.transport.abort()  # the connection drops with no answer at all
        return web.Response(text="never sent")
    if last == "9":
        return web.Response(body=b"CON caf\xe9 not UTF-8\n1.bye", content_type="text/plain")
    return web.Response(text="END bye")


class _Server:
    """A real aiohttp server on a loopback port, in its own thread and event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/ussd/africastalking", _misbehaving)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", 0).start())
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()


@pytest.fixture
def misbehaving() -> Iterator[_Server]:
    server = _Server()
    try:
        yield server
    finally:
        server.stop()


def test_survives_any_answer_with_one_clear_line_each(misbehaving: _Server) -> None:
    # Each bad answer ends the session (as a gateway would); Enter dials again.
    keys = "4\n\n5\n\n3\n\n7\n\n6\n\n8\n\n9\n1\nq\n"
    done = _simulate(keys, "--url", misbehaving.url)
    out = done.stdout
    assert "Traceback" not in done.stderr + out, done.stderr
    url = f"{misbehaving.url}/ussd/africastalking"
    flat = " ".join(out.split())  # rich wraps long lines at COLUMNS
    for line in (
        f"hotline simulate: POST {url}: HTTP 400 Bad Request: text may only hold the digits",
        f"hotline simulate: POST {url}: HTTP 500 Internal Server Error: <html><body>500 oops",
        f"hotline simulate: POST {url}: HTTP 403 Forbidden: (empty body)",
        f"hotline simulate: POST {url}: the answer starts with neither CON nor END: 'hello'",
        f"hotline simulate: POST {url}: the answer starts with neither CON nor END: an empty body",
        f"hotline simulate: POST {url}: the server closed the connection without answering",
    ):
        assert line in flat, line
    assert flat.count("a gateway ends the session here") == 6
    assert out.count("Broken service") == 7  # the first dial and six dials again
    assert "caf\ufffd not UTF-8" in out  # undecodable bytes shown, not a crash
    assert "bye" in out.rsplit("END", 1)[-1]
    assert done.returncode == 0  # the last answer was a good one


def test_server_gone_mid_session_is_one_line_and_a_failed_exit(misbehaving: _Server) -> None:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline", "simulate", "--url", misbehaving.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    seen: list[str] = []
    while not any("Broken service" in line for line in seen):
        line = proc.stdout.readline()
        assert line, "simulate ended before the first screen"
        seen.append(line)
    misbehaving.stop()  # the server goes away while the session waits for a key
    out, err = proc.communicate("1\n\nq\n", timeout=60)
    flat = " ".join(out.split())
    assert flat.count("cannot connect (Connection refused); is hotline running there?") == 2
    assert "Traceback" not in err + out, err
    assert proc.returncode == 1  # the last answer was a failure
