"""The SQLite ledger: demo seed, provider, and the `hotline ledger` CLI contract."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hotline.balance.ledger import LedgerProvider, LedgerStore, open_ledger
from hotline.balance.msisdn import canonical_msisdn, e164
from hotline.base.errors import ConfigError, UpstreamNotFound
from hotline.base.privacy import Pseudonymizer
from hotline.base.values import Money
from hotline.cli import main
from hotline.cli.ledger import parse_amount

TODAY = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)


def run(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """`hotline ledger …` through the real entry point (ConfigError → exit 2)."""
    monkeypatch.setenv("HOTLINE_BALANCE__LEDGER_PATH", str(tmp_path / "ledger.sqlite3"))
    monkeypatch.chdir(tmp_path)
    return main(["ledger", *argv])


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("13800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("+254711000111", "254711000111"),
    ],
)
def test_canonical_msisdn(raw: str, canonical: str) -> None:
    assert canonical_msisdn(raw) == canonical


def test_canonical_rejects_and_e164() -> None:
    for bad in ("", "1234", "1" * 16):
        with pytest.raises(ValueError):
            canonical_msisdn(bad)
    assert e164("13800138000") == "+8613800138000"
    assert e164("254711000111") == "+254711000111"


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("12.50", 1250),
        ("12.5", 1250),
        ("0.05", 5),
        ("-3.20", -320),
        ("0.29", 29),
        ("100000.01", 10_000_001),
        ("0", 0),
        ("1.1", 110),
    ],
)
def test_amounts_are_decimal_to_fen(text: str, fen: int) -> None:
    assert parse_amount(text) == fen


@pytest.mark.parametrize(
    "text", ["12.505", "abc", "1e3", "NaN", "12,50", "", "--1", "1.", "1234567890"]
)
def test_bad_amounts(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_amount(text)


async def test_demo_seed_and_provider(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "l.sqlite3", seed_demo=True, today=TODAY)
    provider = LedgerProvider(store, Pseudonymizer("k"), now=lambda: NOW)
    main = await provider.fetch("+8613800138000")
    assert main.main_balance == Money(1250)
    assert main.bucket("data").remaining.value == 3 * 1024**3  # type: ignore[union-attr]
    assert main.bucket("voice").remaining.value == 200 * 60  # type: ignore[union-attr]
    assert main.bucket("sms").remaining.value == 100  # type: ignore[union-attr]
    until = main.bucket("data").valid_until  # type: ignore[union-attr]
    assert until == dt.datetime(2026, 11, 30, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 UTC+8
    assert main.subscriber_token == Pseudonymizer("k")("13800138000")
    assert (await provider.fetch("13800138001")).main_balance == Money(5)
    assert (await provider.fetch("13800138002")).main_balance == Money(-320)
    assert (await provider.fetch("13800138003")).account_status == "suspended"
    rich = await provider.fetch("13800138004")
    assert rich.main_balance == Money(10_000_001)
    assert rich.bucket("sms").valid_until is None  # type: ignore[union-attr]
    assert (await provider.fetch("13800138005")).buckets == ()
    with pytest.raises(UpstreamNotFound):
        await provider.fetch("13800138009")
    await provider.close()


async def test_expired_package_is_marked(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "l.sqlite3", seed_demo=True, today=dt.date(2026, 10, 1))
    provider = LedgerProvider(store, Pseudonymizer("k"), now=lambda: NOW)
    snap = await provider.fetch("13800138000")
    assert {b.status for b in snap.buckets} == {"expired"}
    assert snap.bucket("data") is None
    await provider.close()


def test_seed_only_when_new(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    LedgerStore(path, seed_demo=False).close()
    store = LedgerStore(path, seed_demo=True)
    assert store.all() == []
    store.close()


def test_cli_set_show_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(
            [
                "set",
                "+86 139 0000 0001",
                "--main",
                "0.29",
                "--data-mb",
                "1536",
                "--voice-min",
                "30",
                "--sms",
                "5",
                "--data-expiry",
                "2027-01-31",
            ],
            tmp_path,
            monkeypatch,
        )
        == 0
    )
    store = LedgerStore(tmp_path / "ledger.sqlite3")
    record = store.get("13900000001")
    store.close()
    assert record is not None and record.main_minor == 29
    buckets = {b.usage_type: b for b in record.buckets}
    assert buckets["data"].remaining == 1536 * 1024**2
    assert buckets["voice"].remaining == 1800 and buckets["sms"].remaining == 5
    assert buckets["data"].valid_until == dt.datetime(2027, 1, 31, 15, 59, 59, tzinfo=dt.UTC)
    assert (
        run(
            ["set", "13900000001", "--main", "-3.20", "--status", "suspended"],
            tmp_path,
            monkeypatch,
        )
        == 0
    )
    capsys.readouterr()
    assert run(["show", "8613900000001"], tmp_path, monkeypatch) == 0
    shown = capsys.readouterr().out
    assert "-3.20" in shown and "suspended" in shown and "1536 MB" in shown
    assert run(["list"], tmp_path, monkeypatch) == 0
    listed = capsys.readouterr().out
    assert "13800138000" in listed and "13900000001" in listed  # demo seeded with the new DB
    assert run(["show", "13700000000"], tmp_path, monkeypatch) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["set", "13900000002", "--main", "12.505"],
        ["set", "13900000002", "--main", "abc"],
        ["set", "13900000002", "--main", "1", "--data-mb", "-1"],
        ["set", "13900000002", "--main", "1", "--voice-min", "1.5"],
        ["set", "13900000002", "--main", "1", "--sms-expiry", "2026-13-01"],
        ["set", "13900000002", "--data-mb", "10"],
        ["set", "13900000002", "--main", "1", "--data-expiry", "2027-01-01"],
        ["set", "12", "--main", "1"],
        ["show", "12"],
    ],
)
def test_cli_bad_values_exit_2_with_one_line(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(argv, tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hotline: ")


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("HOTLINE_BALANCE__SUBSCRIBER_RATE", "ten a minute", "balance.subscriber_rate"),
        ("HOTLINE_BALANCE__URL", "ftp://x", "balance.url"),
        ("HOTLINE_BALANCE__DEADLINE", "12", "balance.deadline"),
        ("HOTLINE_BALANCE__PROVIDER", "soap", "balance.provider"),
    ],
)
def test_bad_balance_settings_name_the_key(
    name: str, value: str, key: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hotline.base.config import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    message = str(caught.value)
    assert key in message and name in message and "\n" not in message


def test_a_ledger_that_cannot_be_opened_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    directory = tmp_path / "a-directory.sqlite3"
    directory.mkdir()
    for path in (tmp_path / "a-file" / "ledger.sqlite3", directory):
        with pytest.raises(ConfigError, match=r"^config balance\.ledger_path .*cannot open"):
            open_ledger(path, seed_demo=True)
    monkeypatch.setenv("HOTLINE_BALANCE__LEDGER_PATH", str(directory))
    assert main(["ledger", "list"]) == 2
    assert "cannot open" in capsys.readouterr().err
