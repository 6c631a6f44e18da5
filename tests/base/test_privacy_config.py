"""Pseudonyms, masks and settings errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.base.config import load_settings
from hotline.base.errors import ConfigError
from hotline.base.privacy import Pseudonymizer, canonical_msisdn, mask_msisdn


@pytest.mark.parametrize(
    "raw", ["+8613800138000", "8613800138000", "13800138000", "138 0013 8000", "0086-138-0013-8000"]
)
def test_one_subscriber_one_pseudonym(raw: str) -> None:
    pseudonym = Pseudonymizer("k")
    assert canonical_msisdn(raw) == "13800138000"
    assert pseudonym(raw) == pseudonym("13800138000")
    assert "13800138000" not in pseudonym(raw)


def test_pseudonym_depends_on_the_key() -> None:
    assert Pseudonymizer("a")("13800138000") != Pseudonymizer("b")("13800138000")


def test_mask() -> None:
    assert mask_msisdn("+8613800138000") == "138****8000"
    assert mask_msisdn("13800138000") == "138****8000"


def test_bad_value_is_one_line_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_USSD__GSM7_LIMIT", "lots")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("config ussd.gsm7_limit (HOTLINE_USSD__GSM7_LIMIT):")


def test_environment_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text("port: 9000\nenv: file\n", encoding="utf-8")
    monkeypatch.setenv("HOTLINE_ENV", "envvar")
    settings = load_settings(config)
    assert settings.port == 9000 and settings.env == "envvar"


def test_unknown_key_and_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text("prot: 9000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="prot"):
        load_settings(config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_bad_timezone_and_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="HOTLINE_TIMEZONE"):
        load_settings()
    monkeypatch.delenv("HOTLINE_TIMEZONE")
    monkeypatch.setenv("HOTLINE_DEFAULT_LANGUAGE", "fr")
    with pytest.raises(ConfigError, match="HOTLINE_DEFAULT_LANGUAGE"):
        load_settings()


def test_currencies_must_count_in_hundredths(monkeypatch: pytest.MonkeyPatch) -> None:
    # amount_minor and max_main_balance are hundredths: UGX (no decimals) would be 100x off.
    monkeypatch.setenv("HOTLINE_BALANCE__CURRENCIES", '["CNY", "UGX"]')
    with pytest.raises(ConfigError, match="UGX does not have two decimal places"):
        load_settings()
    monkeypatch.setenv("HOTLINE_BALANCE__CURRENCIES", '["CNY", "KES"]')
    assert load_settings().balance.currencies == ("CNY", "KES")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("foo://user:hunter2@host", "expected redis://"),
        ("redis+cluster://user:hunter2@host:port", "bad port"),
        ("redis+sentinel://user:hunter2@s1:26379", "master name"),
    ],
)
def test_a_bad_redis_url_stops_startup_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    monkeypatch.setenv("HOTLINE_REDIS_URL", url)
    with pytest.raises(ConfigError, match=reason) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_a_deeply_nested_config_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text("ussd: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_settings(config)
