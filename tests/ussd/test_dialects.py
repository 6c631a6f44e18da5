"""USSD dialects are objects of one typed protocol, found by module: a new gateway is one
module in `ussd/dialects/` (plus its tests), with no edit anywhere else."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import ussd.dialects
from hotline.web.app import create_app
from tests.web.conftest import PHONE, ops_settings
from ussd.dialects import africastalking, dialects

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def test_the_shipped_dialects() -> None:
    assert [d.NAME for d in dialects()] == ["africastalking", "arkesel", "beem", "hubtel", "nalo"]
    assert dialects()[0] is africastalking.DIALECT


# A made-up gateway: `sid`, `msisdn`, `ussd` (the inputs so far, `*`-joined) in;
# `1 <text>` to continue or `0 <text>` to end out; callers need an allow-listed address.
_PLAIN = """
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

from hotline.base.config import Settings, UssdSettings
from hotline.base.errors import BadGatewayRequest
from hotline.flow.events import ChannelEvent
from ussd.page import UssdPage
from hotline.web.guards import Gateway
from hotline.web.security import parse_networks
from ussd.form import read_form

NAME = "plain"


class Plain:
    NAME: ClassVar[str] = NAME
    read = staticmethod(read_form)

    def parse(self, form: Mapping[str, str], settings: UssdSettings) -> ChannelEvent:
        try:
            sid, msisdn, text = form["sid"], form["msisdn"], form["ussd"]
        except KeyError as exc:
            raise BadGatewayRequest(f"missing {exc.args[0]}") from None
        # Only the newest input, plus the gateway's own request number for replays.
        kind = "input" if text else "start"
        rid = form.get("rid")
        return ChannelEvent("ussd", NAME, sid, msisdn, kind, text, "*100#", request_id=rid)

    def reply(
        self, page: UssdPage, label: str, form: Mapping[str, str]
    ) -> tuple[str, dict[str, str]]:
        return ("0 " if page.ends else "1 ") + page.text, {"Content-Type": "text/plain"}

    def gateway(self, settings: Settings, base: Gateway) -> Gateway:
        return dataclasses.replace(
            base, subscriber_field="msisdn", allowed=parse_networks(["127.0.0.1"])
        )


DIALECT = Plain()
"""


@pytest.fixture
def plain_dialect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "plain.py").write_text(textwrap.dedent(_PLAIN), encoding="utf-8")
    monkeypatch.setattr(ussd.dialects, "__path__", [*ussd.dialects.__path__, str(tmp_path)])
    dialects.cache_clear()
    yield
    dialects.cache_clear()
    sys.modules.pop("ussd.dialects.plain", None)


async def test_a_new_dialect_is_one_module(
    plain_dialect: None, aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    assert [d.NAME for d in dialects()] == [
        "africastalking",
        "arkesel",
        "beem",
        "hubtel",
        "nalo",
        "plain",
    ]
    settings = ops_settings(tmp_path, security={"trusted_proxies": ["127.0.0.1"]})
    client = await aiohttp_client(create_app(settings))
    form = {"sid": "p-1", "msisdn": PHONE, "ussd": ""}
    response = await client.post("/ussd/plain", data=form)
    assert response.status == 200
    first = await response.text()
    assert first.startswith("1 ") and "1." in first
    response = await client.post("/ussd/plain", data={**form, "ussd": "5", "rid": "2"})
    assert (await response.text()).startswith("1 请选择语言")
    # The gateway repeats request 2: the same screen, not a second "5" (invalid here).
    response = await client.post("/ussd/plain", data={**form, "ussd": "5", "rid": "2"})
    assert (await response.text()).startswith("1 请选择语言")
    response = await client.post("/ussd/plain", data={**form, "ussd": "0", "rid": "3"})
    assert await response.text() == first
    response = await client.post("/ussd/plain", data={**form, "ussd": "1", "rid": "4"})
    assert await response.text() == "0 您的话费余额为12.50元。"
    # Its gateway guards it: a caller outside its allow-list (via the trusted proxy) is refused.
    refused = await client.post("/ussd/plain", data=form, headers={"X-Forwarded-For": "192.0.2.1"})
    assert refused.status == 403
    assert (await client.post("/ussd/plain", data={"sid": "p-2"})).status == 400


def test_a_module_without_a_dialect_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stray.py").write_text("X = 1\n", encoding="utf-8")
    monkeypatch.setattr(ussd.dialects, "__path__", [*ussd.dialects.__path__, str(tmp_path)])
    dialects.cache_clear()
    try:
        with pytest.raises(TypeError, match=r"ussd.dialects.stray: expected DIALECT"):
            dialects()
    finally:
        dialects.cache_clear()
        sys.modules.pop("ussd.dialects.stray", None)
