"""Operating the outbox: its Prometheus series on `/metrics` (bounded labels) and
`hotline sms purge`, on the real app and a real SQLite file."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.cli import main
from hotline.store.outbox import EVENTS, Outbox
from hotline.web.app import create_app
from hotline.web.keys import MESSAGES
from tests.sms.conftest import PHONE, sms_settings

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
SERIES = re.compile(r'^hotline_sms_outbox_events_total\{event="([a-z]+)"\} ([0-9.]+)$', re.M)


async def test_outbox_events_are_metrics_with_a_fixed_vocabulary(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    settings = sms_settings(tmp_path, sms={"outbox_path": tmp_path / "outbox.sqlite3"})
    client = await aiohttp_client(create_app(settings))
    outbox = client.app[MESSAGES]
    first = await outbox.send(PHONE, "common.goodbye", {}, "en")
    second = await outbox.send(PHONE, "common.goodbye", {}, "en", kind="otp")
    await outbox.claim(10, 30)
    assert await outbox.begin(first, 30) and await outbox.begin(second, 30)
    await outbox.sent(first, "m-1")
    await outbox.record_report(first, "delivered")
    await outbox.fail(second, "refused")
    text = await (await client.get("/metrics")).text()
    found = {event: float(value) for event, value in SERIES.findall(text)}
    assert set(found) == set(EVENTS)  # every label there from the start, no other
    assert {e: v for e, v in found.items() if v} == {
        "queued": 2,
        "sent": 1,
        "delivered": 1,
        "failed": 1,
    }
    assert PHONE.lstrip("+") not in text and "m-1" not in text


async def _finished_long_ago(path: Path) -> tuple[int, int]:
    """Two messages: one delivered 40 days ago, one queued now."""
    outbox = Outbox(f"sqlite:///{path}", clock=lambda: time.time() - 40 * 86400)
    try:
        old = await outbox.send(PHONE, "x", {}, "en")
        await outbox.claim(5, 30)
        assert await outbox.begin(old, 30)
        await outbox.sent(old, "o-1")
        await outbox.record_report(old, "delivered")
    finally:
        await outbox.close()
    outbox = Outbox(f"sqlite:///{path}")
    try:
        new = await outbox.send(PHONE, "x", {}, "en")
    finally:
        await outbox.close()
    return old, new


def test_hotline_sms_purge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "outbox.sqlite3"
    _, new = asyncio.run(_finished_long_ago(path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE_SMS__OUTBOX_PATH", str(path))
    assert main(["sms", "purge", "--days", "60"]) == 0
    assert "purged 0 message(s) finished more than 60 day(s) ago" in capsys.readouterr().out
    assert main(["sms", "purge"]) == 0  # sms.outbox_keep_days: 30
    assert "purged 1 message(s) finished more than 30 day(s) ago" in capsys.readouterr().out
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT id FROM sms_outbox")] == [new]
    monkeypatch.setenv("HOTLINE_SMS__OUTBOX_KEEP_DAYS", "0")
    assert main(["sms", "purge"]) == 0
    assert "keeping messages forever" in capsys.readouterr().out
