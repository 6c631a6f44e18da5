"""Plan change on the voice menu (Twilio-style TwiML over HTTP): the same flow, prices
spoken as words, the same one order per confirmation."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from hotline.balance.ledger import LedgerStore
from hotline.web.app import create_app
from ivr.clips import ClipSealer
from tests.plans.conftest import PSEUDONYM_SECRET, plan_settings

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
VOICE = "/ivr/twilio/voice"
SEALER = ClipSealer(PSEUDONYM_SECRET)


class Call:
    """A call through a Twilio-style platform: follows the document's Gather."""

    def __init__(self, client: Client, sid: str, phone: str = "+8613800138000") -> None:
        self.client, self.sid, self.phone = client, sid, phone
        self.doc: ET.Element | None = None

    async def post(self, path: str, **fields: str) -> list[str]:
        form = {"CallSid": self.sid, "From": self.phone, "To": "+8610086", **fields}
        response = await self.client.post(path, data=form)
        assert response.status == 200, await response.text()
        self.doc = ET.fromstring(await response.text())
        return self.spoken

    async def start(self) -> list[str]:
        return await self.post(VOICE, CallStatus="ringing")

    async def press(self, digits: str) -> list[str]:
        assert self.doc is not None
        gather = self.doc.find("Gather")
        assert gather is not None, "no Gather to press keys into"
        return await self.post(str(URL(gather.attrib["action"]).relative()), Digits=digits)

    @property
    def spoken(self) -> list[str]:
        assert self.doc is not None
        return [
            SEALER.open(URL(play.text or "").name.removesuffix(".wav")).text
            for play in self.doc.iter("Play")
        ]


async def test_a_bundle_by_voice_prices_in_words_and_one_order(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    settings = plan_settings(
        tmp_path,
        redis_url=redis_url,
        top={"ivr": {"audio_dir": tmp_path / "audio", "warm_prompts": False}},
    )
    client = await aiohttp_client(create_app(settings))
    call = Call(client, "CA" + "p" * 32)
    assert "套餐，请按七。" in await call.start()
    current = " ".join(await call.press("7"))
    assert "畅享58元套餐" in current and "五十八元" in current
    offers = " ".join(await call.press("1"))
    assert "三十八元" in offers and "下一页请按9" in offers.replace("九", "9")
    await call.press("9")
    confirm = " ".join(await call.press("1"))
    assert "10GB流量包" in confirm and "十元" in confirm and "从余额扣除" in confirm
    done = " ".join(await call.press("1"))
    assert "办理成功" in done
    ledger = LedgerStore(tmp_path / "ledger.sqlite3")
    record = ledger.get("13800138000")
    ledger.close()
    assert record is not None and record.main_minor == 250
