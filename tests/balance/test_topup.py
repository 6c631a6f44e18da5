"""The shipped top-up flow (`flows/topup.yaml`, `*102#`) end to end, through the USSD
gateway's HTTP, against the billing simulator's `POST /v1/topup` as a real server, with
sessions in a real Redis: echo, credit, every error sentence, a timeout and an answer
that does not match the flow's `receive:`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from hotline.base.config import Settings
from hotline.web.app import create_app
from hotline.web.keys import METRICS
from tests.balance.conftest import KEY_ID, SECRET, Sim

ROOT = Path(__file__).resolve().parents[2]
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
PHONE = "+8613800138000"  # 12.50 元 in the simulator's demo data
CARD = "1234567812345678"  # 50.00 元, unused (hotline.balance.sim.topup.DEMO_CARDS)
CONFIRM = f"CON 您输入的充值卡密码为{CARD}，确认充值？\n1.确认充值\n2.重新输入\n0.返回"


def settings(sim: Sim, redis_url: str, tmp_path: Path, **endpoint: Any) -> Settings:
    topup: dict[str, Any] = {
        "url": sim.url + "v1/topup",
        "auth": "hmac",
        "key_id": KEY_ID,
        "secret": SECRET,
        "timeout": 0.5,
    }
    topup.update(endpoint)
    return Settings(
        flows_dir=ROOT / "flows",
        prompts_dir=ROOT / "prompts",
        pseudonym_secret="test-secret",
        redis_url=redis_url,
        redis_timeout=2.0,  # as tests/ussd/test_http.py: room for a busy test host
        balance={
            "provider": "http",
            "url": sim.url,
            "key_id": KEY_ID,
            "secret": SECRET,
            "ledger_path": tmp_path / "unused.sqlite3",
            "fresh_ttl": 0,
        },
        http_endpoints={"topup": topup},
    )


class Phone:
    """One USSD session through the Africa's Talking route."""

    def __init__(self, client: Client, session: str, code: str = "*102#") -> None:
        self.client, self.session, self.code, self.typed = client, session, code, []

    async def send(self, *keys: str) -> str:
        self.typed.extend(keys)
        response = await self.client.post(
            "/ussd/africastalking",
            data={
                "sessionId": self.session,
                "serviceCode": self.code,
                "phoneNumber": PHONE,
                "text": "*".join(self.typed),
            },
        )
        assert response.status == 200
        return await response.text()


async def top_up(client: Client, session: str, card: str) -> str:
    phone = Phone(client, session)
    assert await phone.send() == "CON 请输入16位充值卡密码："
    assert (await phone.send(card)).startswith(f"CON 您输入的充值卡密码为{card}，")
    return await phone.send("1")


async def test_a_card_tops_up_and_the_balance_shows_it(
    sim: Sim, redis_url: str, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(create_app(settings(sim, redis_url, tmp_path)))
    phone = Phone(client, "s1")
    assert await phone.send() == "CON 请输入16位充值卡密码："
    assert (
        await phone.send("12345") == "CON 卡密码应为16位数字，请重新输入。\n请输入16位充值卡密码："
    )
    assert await phone.send(CARD) == CONFIRM  # the input echoed, digit for digit
    assert await phone.send("1") == "END 充值成功，到账50.00元，当前余额62.50元。"
    balance = await Phone(client, "s2", "*100#").send("1")
    assert balance == "END 您的话费余额为62.50元。"  # the simulator's ledger was credited
    assert (await sim.stats())["topups"] == 1


async def test_each_refusal_has_its_sentence(
    sim: Sim, redis_url: str, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(create_app(settings(sim, redis_url, tmp_path)))
    assert await top_up(client, "a", "0000000000000000") == (
        "END 充值卡密码无效，请核对后重拨*102#。"
    )
    assert await top_up(client, "b", "1111222233334444") == "END 该充值卡已被使用，请更换充值卡。"
    assert (await top_up(client, "c", CARD)).startswith("END 充值成功")
    assert await top_up(client, "d", CARD) == "END 该充值卡已被使用，请更换充值卡。"


async def test_a_timeout_says_the_result_is_unknown_within_the_endpoint_budget(
    sim: Sim, redis_url: str, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(create_app(settings(sim, redis_url, tmp_path)))
    await sim.fault(fault="hang")
    started = time.perf_counter()
    assert await top_up(client, "t", CARD) == (
        "END 充值结果暂未确认，请稍后查询余额，请勿重复充值。"
    )
    assert time.perf_counter() - started < 1.5  # timeout 0.5 s, never retried
    assert (await sim.stats())["topups"] == 1


async def test_an_answer_that_does_not_match_receive_is_an_error_not_a_half_screen(
    sim: Sim, redis_url: str, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(create_app(settings(sim, redis_url, tmp_path)))
    failed = "END 充值暂时无法完成，请稍后查询余额后再试。"
    await sim.fault(fault="wrong_types", times=1)  # "balance": {"amount_minor": "62.50"}
    assert await top_up(client, "m1", CARD) == failed
    await sim.fault(fault="missing_field", times=1)  # no "balance" at all
    assert await top_up(client, "m2", "8888000011112222") == failed
    await sim.fault(fault="html_error", status=200, times=1)  # not JSON
    await sim.put_card("9999000011112222", {"value_minor": 2000})
    assert await top_up(client, "m3", "9999000011112222") == failed


async def test_a_bad_signature_and_a_closed_port_are_errors(
    sim: Sim, redis_url: str, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    failed = "END 充值暂时无法完成，请稍后查询余额后再试。"
    wrong = settings(sim, redis_url, tmp_path, secret="not-the-secret-0123456789")
    client = await aiohttp_client(create_app(wrong))
    assert await top_up(client, "w", CARD) == failed
    assert (await sim.stats())["auth_failures"] == 1
    closed = settings(sim, redis_url, tmp_path, url="http://127.0.0.1:9/v1/topup")
    other = await aiohttp_client(create_app(closed))
    assert await top_up(other, "x", CARD) == failed


async def test_the_breaker_opens_after_failures_and_spares_the_upstream(
    sim: Sim, redis_url: str, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    app = create_app(settings(sim, redis_url, tmp_path, breaker_failures=2))
    client = await aiohttp_client(app)
    await sim.fault(fault="status", status=503)
    for session in ("b1", "b2", "b3", "b4"):
        assert (await top_up(client, session, CARD)).startswith("END 充值暂时无法完成")
    assert (await sim.stats())["topups"] == 2  # the breaker kept calls 3 and 4 home
    registry: CollectorRegistry = app[METRICS].registry
    state = registry.get_sample_value("hotline_endpoint_breaker_state", {"provider": "topup"})
    assert state == 1
