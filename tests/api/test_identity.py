"""Identity exchanges against the local simulator (a real aiohttp server): a WeChat
getPhoneNumber code and an operator one-tap token each become a subscriber token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from api.identity.sim import ONETAP_PATH, make_app
from tests.api.conftest import PHONE, running


@pytest.fixture
async def sim() -> AsyncIterator[str]:
    server = TestServer(make_app("wx-app", "wx-secret"))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def _issue(base: str, kind: str, phone: str) -> str:
    async with ClientSession() as http:
        path = "/_sim/wechat/code" if kind == "wechat" else "/_sim/onetap/token"
        async with http.post(base + path, json={"phone": phone}) as r:
            data = await r.json()
            value: str = data["code" if kind == "wechat" else "token"]
            return value


def _identity(base: str, secret: str = "wx-secret") -> dict[str, object]:
    return {
        "identity": {
            "wechat": {"kind": "wechat", "url": base, "app_id": "wx-app", "secret": secret},
            "onetap": {
                "kind": "onetap",
                "url": base + ONETAP_PATH,
                "app_id": "wx-app",
                "secret": secret,
            },
        }
    }


async def test_wechat_and_onetap_sign_in(tmp_path: Path, redis_url: str, sim: str) -> None:
    async with running(tmp_path, redis_url, api=_identity(sim)) as api:
        client = await api.client_token(api.register("mini", "balance:read"))
        auth = {"Authorization": f"Bearer {client}"}
        for provider in ("wechat", "onetap"):
            code = await _issue(sim, provider, PHONE)
            r = await api.client.post(
                "/api/v1/auth/exchange", json={"provider": provider, "code": code}, headers=auth
            )
            assert r.status == 200, await r.text()
            body = await r.json()
            assert body["subscriber"] == "138****8000"
            me = {"Authorization": f"Bearer {body['access_token']}"}
            balance = await (await api.client.get("/api/v1/me/balance", headers=me)).json()
            assert balance["balance"]["minor"] == 1250
            # single use
            r = await api.client.post(
                "/api/v1/auth/exchange", json={"provider": provider, "code": code}, headers=auth
            )
            assert r.status == 401 and (await r.json())["code"] == "invalid_code"
        r = await api.client.post(
            "/api/v1/auth/exchange", json={"provider": "alipay", "code": "x"}, headers=auth
        )
        assert r.status == 404 and (await r.json())["code"] == "unknown_provider"


async def test_wrong_credentials_and_a_provider_down(
    tmp_path: Path, redis_url: str, sim: str
) -> None:
    async with running(tmp_path, redis_url, api=_identity(sim, secret="wrong")) as api:
        client = await api.client_token(api.register("mini", "balance:read"))
        auth = {"Authorization": f"Bearer {client}"}
        for provider in ("wechat", "onetap"):
            code = await _issue(sim, provider, PHONE)
            r = await api.client.post(
                "/api/v1/auth/exchange", json={"provider": provider, "code": code}, headers=auth
            )
            assert r.status == 503 and (await r.json())["code"] == "upstream_unavailable"
    gone = "http://127.0.0.1:9"  # nothing listens on the discard port
    async with running(tmp_path, redis_url, api=_identity(gone)) as api:
        client = await api.client_token(api.register("mini2", "balance:read"))
        r = await api.client.post(
            "/api/v1/auth/exchange",
            json={"provider": "wechat", "code": "abc"},
            headers={"Authorization": f"Bearer {client}"},
        )
        assert r.status == 503 and (await r.json())["code"] == "upstream_unavailable"
