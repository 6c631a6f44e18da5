"""The bundle rules through `/api/v1/me/reminders` on a real app (real Redis, the real
reminders store): set, shown in `rules`, refused with the choices, all off by DELETE."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.reminders.wiring import REMINDERS
from tests.api.conftest import PHONE, Api, running

SCOPES = "reminders:read,reminders:write"


@pytest.fixture
async def app(tmp_path: Path, redis_url: str) -> AsyncIterator[Api]:
    extra = {"reminders": {"database_path": str(tmp_path / "reminders.sqlite3")}}
    async with running(tmp_path, redis_url, **extra) as found:
        yield found


async def _me(app: Api) -> dict[str, str]:
    who = app.register(f"app-{uuid.uuid4().hex[:8]}", SCOPES)
    token = await app.sign_in(await app.client_token(who), PHONE)
    return {"Authorization": f"Bearer {token}"}


async def test_bundle_rules_by_api(app: Api) -> None:
    auth = await _me(app)
    url = "/api/v1/me/reminders"
    r = await app.client.put(url, json={"rule": "data.low", "percent": 10}, headers=auth)
    body = await r.json()
    assert r.status == 200, body
    assert body["rules"] == {"data.low": 10} and body["active"] is False  # no balance rule
    assert body["text"] == ("已开通流量提醒：套餐流量剩余低于10%时将短信通知您。回复QXTX取消提醒。")
    r = await app.client.put(url, json={"rule": "bundle.expiry", "days": 3}, headers=auth)
    assert (await r.json())["rules"] == {"data.low": 10, "bundle.expiry": 3}
    await app.client.put(url, json={"threshold_minor": 500}, headers=auth)
    r = await app.client.get(url, headers={**auth, "Accept-Language": "en"})
    body = await r.json()
    assert body["rules"] == {"balance.low": 5, "data.low": 10, "bundle.expiry": 3}
    assert body["threshold"]["minor"] == 500

    r = await app.client.put(url, json={"rule": "voice.low", "percent": 15}, headers=auth)
    body = await r.json()
    assert r.status == 400 and body["code"] == "invalid_threshold"
    assert "10, 20" in body["detail"]
    for bad in (
        {"rule": "voice.low"},
        {"rule": "voice.low", "days": 3},
        {"rule": "bundle.expiry", "days": 3, "threshold_minor": 500},
        {"rule": "sms.low", "percent": 10},
    ):
        r = await app.client.put(url, json=bad, headers=auth)
        assert r.status == 400 and (await r.json())["code"] == "bad_request", bad

    r = await app.client.delete(url, headers=auth)
    assert r.status == 200 and (await r.json())["rules"] == {}
    records = await app.client.server.app[REMINDERS].store.consent("13800138000")
    assert sorted((c.rule, c.action, c.channel) for c in records if c.action == "out") == [
        ("balance.low", "out", "api"),
        ("bundle.expiry", "out", "api"),
        ("data.low", "out", "api"),
    ]
