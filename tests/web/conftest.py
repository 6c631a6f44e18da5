"""Helpers for ops tests: settings on the real flows/prompts, a ledger in tmp, AT forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hotline.base.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+8613800138000"  # demo subscriber: main balance 12.50 yuan
OTHER_PHONE = "+8613800138005"
AT = "/ussd/africastalking"


def ops_settings(tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "flows_dir": ROOT / "flows",
        "prompts_dir": ROOT / "prompts",
        "pseudonym_secret": "ops-test-secret",
        "redis_timeout": 2.0,  # as tests/ussd/test_http.py: room for a busy test host
        "balance": {"ledger_path": tmp_path / "ledger.sqlite3"},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return Settings(**values)


def at_form(session: str, text: str = "", phone: str = PHONE) -> dict[str, str]:
    return {
        "sessionId": session,
        "serviceCode": "*100#",
        "phoneNumber": phone,
        "networkCode": "46000",
        "text": text,
    }


def sample(metrics_text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text; 0.0 when the series does not exist."""
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


@pytest.fixture
def settings_factory(tmp_path: Path) -> Any:
    def make(**extra: Any) -> Settings:
        return ops_settings(tmp_path, **extra)

    return make
