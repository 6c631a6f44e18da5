"""`hotline simulate` as a user runs it: a subprocess, keys typed on stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    assert "52/80 UCS-2" in out  # the main menu's share of a Chinese screen
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
