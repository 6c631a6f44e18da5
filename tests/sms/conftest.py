"""SMS test helpers: settings on the shipped flows plus an SMS menu, Kannel-style calls."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hotline.base.config import Settings

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PHONE = "+8613800138000"  # demo subscriber: 12.50元
SERVICE = "10086"


def sms_flows(tmp_path: Path) -> Path:
    """The shipped flows and `tests/sms/flows/smsmenu.yaml` (keyword CD → a menu)."""
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    for source in (*(ROOT / "flows").glob("*.yaml"), *(HERE / "flows").glob("*.yaml")):
        shutil.copy(source, flows / source.name)
    return flows


def sms_settings(tmp_path: Path, redis_url: str | None = None, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "flows_dir": sms_flows(tmp_path),
        "prompts_dir": ROOT / "prompts",
        "redis_url": redis_url,
        "redis_timeout": 2.0,  # as tests/ussd/test_http.py: room for a busy test host
        "pseudonym_secret": "sms-test-secret",
        "balance": {
            "ledger_path": tmp_path / "ledger.sqlite3",
            "fresh_ttl": 0,
            "subscriber_rate": "1000/minute",
        },
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return Settings(**values)


def kannel_query(
    text: str | bytes,
    *,
    sender: str = PHONE,
    receiver: str = SERVICE,
    message_id: str | None = None,
    coding: str = "0",
    charset: str = "UTF-8",
) -> str:
    """The query smsbox's get-url (`sms.dialects.kannel.get_url`) sends."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    parts = [
        f"from={quote(sender, safe='')}",
        f"to={quote(receiver, safe='')}",
        f"text={quote(raw, safe='')}",
        f"coding={coding}",
        f"charset={charset}",
    ]
    if message_id is not None:
        parts.append(f"id={quote(message_id, safe='')}")
    return "&".join(parts)
