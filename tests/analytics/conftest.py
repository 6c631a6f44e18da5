"""Analytics test helpers: an app with analytics on over real Redis, and the three
channels' HTTP routes driven as the gateways drive them."""

from __future__ import annotations

import datetime as dt
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from hotline.analytics.recorder import RECORDER
from hotline.analytics.report import Report, build_report
from hotline.base.config import Settings

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "analytics-admin-token-0123456789"
ACTIVE = ["+86138001380" + s for s in ("00", "01", "02", "04", "05")]  # demo ledger
SUSPENDED = "+8613800138003"

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def unknown(n: int) -> str:
    """A number the demo ledger does not know."""
    return f"+86139{n:08d}"


def analytics_settings(tmp_path: Path, redis_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "flows_dir": ROOT / "flows",
        "prompts_dir": ROOT / "prompts",
        "redis_url": redis_url,
        "redis_timeout": 2.0,  # as tests/ussd/test_http.py: room for a busy test host
        "pseudonym_secret": "analytics-test-secret",
        "balance": {"ledger_path": tmp_path / "ledger.sqlite3", "subscriber_rate": "1000/minute"},
        "security": {"admin_token": ADMIN_TOKEN, "subscriber_rate": "1000/minute"},
        "analytics": {"enabled": True},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return Settings(**values)


class Ussd:
    """A USSD session through the Africa's Talking route (the transcript grows)."""

    def __init__(self, client: Client, session: str, phone: str, code: str = "*100#") -> None:
        self.client, self.session, self.phone, self.code = client, session, phone, code
        self.typed: list[str] = []

    async def send(self, text: str | None = None) -> str:
        if text is not None:
            self.typed.append(text)
        form = {
            "sessionId": self.session,
            "serviceCode": self.code,
            "phoneNumber": self.phone,
            "networkCode": "46000",
            "text": "*".join(self.typed),
        }
        response = await self.client.post("/ussd/africastalking", data=form)
        assert response.status == 200, await response.text()
        return await response.text()


class Call:
    """A Twilio-style call: follows the TwiML's Gather action."""

    def __init__(self, client: Client, sid: str, phone: str, to: str = "+8610086") -> None:
        self.client, self.sid, self.phone, self.to = client, sid, phone, to
        self.doc: ET.Element | None = None

    async def post(self, path: str, **fields: str) -> str:
        form = {"CallSid": self.sid, "From": self.phone, "To": self.to, **fields}
        response = await self.client.post(path, data=form)
        assert response.status == 200, await response.text()
        body = await response.text()
        self.doc = ET.fromstring(body)
        return body

    async def start(self) -> str:
        return await self.post("/ivr/twilio/voice", CallStatus="ringing")

    async def press(self, digits: str) -> str:
        assert self.doc is not None
        gather = self.doc.find("Gather")
        assert gather is not None, ET.tostring(self.doc)
        return await self.post(str(URL(gather.attrib["action"]).relative()), Digits=digits)

    async def hang_up(self) -> str:
        return await self.post("/ivr/twilio/voice", CallStatus="completed")


async def sms(client: Client, phone: str, text: str) -> str:
    query = (
        f"from={quote(phone, safe='')}&to=10086&text={quote(text, safe='')}&coding=0&charset=UTF-8"
    )
    response = await client.get("/sms/kannel?" + query)
    assert response.status == 200, await response.text()
    return await response.text()


def today(settings: Settings) -> dt.date:
    return dt.datetime.now(ZoneInfo(settings.timezone)).date()


async def settle_and_report(app: web.Application) -> Report:
    """Flush what the workers buffered, settle every session (as if their lifetime had
    passed: the clock moved, nothing slept), and read the report for today."""
    recorder = app[RECORDER]
    await recorder.flush()
    await recorder.settle(now=time.time() + 100_000)
    settings = recorder_settings(app)
    day = today(settings)
    return await build_report(recorder.store, day, day, settings.analytics.min_group)


def recorder_settings(app: web.Application) -> Settings:
    from hotline.web.keys import SETTINGS

    return app[SETTINGS]


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clip cache for the run: each spoken clip is synthesized once."""
    return tmp_path_factory.mktemp("analytics-audio")


@pytest.fixture
def make_client(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, audio_dir: Path
) -> Callable[..., Awaitable[Client]]:
    from hotline.web.app import create_app

    async def make(**extra: Any) -> Client:
        extra.setdefault("ivr", {})
        extra["ivr"] = {"audio_dir": audio_dir, "warm_prompts": False, **extra["ivr"]}
        return await aiohttp_client(create_app(analytics_settings(tmp_path, redis_url, **extra)))

    return make
