"""`hotline ledger offers|offer|withdraw|plan|password|orders` through the real entry point."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hotline.cli import main


def run(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("HOTLINE_PLANS__STORE_PATH", str(tmp_path / "plans.sqlite3"))
    monkeypatch.setenv("COLUMNS", "200")  # rich: whole cells, not ellipses
    monkeypatch.chdir(tmp_path)
    return main(["ledger", *argv])


def test_offers_are_seeded_and_an_offer_can_be_added_and_withdrawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["offers"], tmp_path, monkeypatch) == 0
    assert "plan-38" in capsys.readouterr().out
    argv = ["offer", "addon-night", "--code", "N5", "--name", "夜间流量包", "--kind", "addon"]
    assert run([*argv, "--price", "5", "--data-mb", "5120"], tmp_path, monkeypatch) == 0
    assert "5.00元, now" in capsys.readouterr().out
    assert run(["withdraw", "addon-night"], tmp_path, monkeypatch) == 0
    assert run(["withdraw", "no-such"], tmp_path, monkeypatch) == 1
    capsys.readouterr()
    assert run(["offers"], tmp_path, monkeypatch) == 0
    assert "addon-night" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["offer", "X Y", "--code", "1", "--name", "n", "--kind", "addon", "--price", "1"],
        ["offer", "x", "--code", "1", "--name", "n", "--kind", "addon", "--price", "1.234"],
        ["offer", "x", "--code", "一", "--name", "n", "--kind", "addon", "--price", "1"],
        ["plan", "not-a-number"],
        ["plan", "13800138000", "--set", "no-such-offer"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(argv, tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_plan_password_and_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "13800138000"], tmp_path, monkeypatch) == 0
    assert "plan-58" in capsys.readouterr().out
    assert run(["plan", "13800138005", "--set", "plan-88"], tmp_path, monkeypatch) == 0
    assert "plan-88" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("135790\n"))
    assert run(["password", "13800138000"], tmp_path, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "135790" not in out and "13800138000" not in out
    monkeypatch.setattr("sys.stdin", io.StringIO("12ab\n"))
    assert run(["password", "13800138000"], tmp_path, monkeypatch) == 2
    assert run(["orders"], tmp_path, monkeypatch) == 0
    assert (tmp_path / "plans.sqlite3").exists()
