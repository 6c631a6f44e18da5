"""Plan change on USSD (Africa's Talking over HTTP), on real Redis, with the embedded
provider on the real ledger and the real outbox: every path's screen, a gateway retry
of the confirmation, the service password (never stored), the SMS receipt."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.balance.ledger import LedgerStore
from hotline.plans.model import effective_date
from hotline.store.outbox import Outbox
from hotline.web.app import create_app
from hotline.web.keys import PLANS
from tests.plans.conftest import Sim, plan_settings, receipts

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
PATH = "/ussd/africastalking"
PHONE = "+8613800138000"  # 12.50元, 畅享58
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
NEXT = effective_date("next_month", TODAY)
NEXT_ZH = f"{NEXT.year}年{NEXT.month}月{NEXT.day}日"
TODAY_ZH = f"{TODAY.year}年{TODAY.month}月{TODAY.day}日"

CURRENT = (
    f"CON 您的套餐：畅享58元套餐，月费58.00元，含流量30.00GB、通话500分钟、短信100条，"
    f"{NEXT_ZH}续订。\n1.可选套餐\n0.返回"
)
PAGE_1 = (
    "CON 可选套餐（1/3）：\n1.畅享38元套餐 38.00元\n2.畅享88元套餐 88.00元\n9.下一页\n"
    "请回复序号：\n0.返回 00.主页"
)
CONFIRM_10GB = (
    "CON 您选择了10GB流量包（流量+10GB 当月有效）。\n立即生效，从余额扣除10.00元。\n1.确认\n2.取消"
)
TO_10GB = ("7", "1", "9", "1")


class Phone:
    """A handset behind the gateway: `text` accumulates every input (AT's transcript)."""

    def __init__(self, client: Client, session: str, phone: str = PHONE) -> None:
        self.client, self.session, self.phone = client, session, phone
        self.inputs: list[str] = []

    async def send(self, text: str) -> str:
        form = {"sessionId": self.session, "serviceCode": "*100#", "phoneNumber": self.phone}
        response = await self.client.post(PATH, data={**form, "text": text})
        assert response.status == 200, await response.text()
        return await response.text()

    async def dial(self) -> str:
        self.inputs = []
        return await self.send("")

    async def press(self, key: str) -> str:
        self.inputs.append(key)
        return await self.send("*".join(self.inputs))


@pytest.fixture
async def app_client(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> Callable[..., Awaitable[Client]]:
    async def make(**plans: Any) -> Client:
        settings = plan_settings(tmp_path, redis_url=redis_url, **plans)
        return await aiohttp_client(create_app(settings))

    return make


def _balance(tmp_path: Path, number: str = "13800138000") -> int:
    ledger = LedgerStore(tmp_path / "ledger.sqlite3")
    record = ledger.get(number)
    ledger.close()
    assert record is not None
    return record.main_minor


async def test_menu_current_plan_offers_pages_confirm_done_and_receipt(
    app_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await app_client()
    phone = Phone(client, "u1")
    assert "7.套餐" in await phone.dial()
    assert await phone.press("7") == CURRENT
    assert await phone.press("1") == PAGE_1
    page2 = await phone.press("9")
    assert page2.startswith("CON 可选套餐（2/3）：\n1.10GB流量包 10.00元\n2.100分钟通话包 5.00元")
    page3 = await phone.press("9")
    assert page3.startswith("CON 可选套餐（3/3）：\n1.100条短信包 3.00元\n9.下一页")
    assert await phone.press("9") == PAGE_1  # wraps to the first page
    await phone.press("9")
    assert (await phone.press("1")).startswith(CONFIRM_10GB)
    done = await phone.press("1")
    assert done.startswith(f"END 办理成功：10GB流量包，{TODAY_ZH}生效，订单号PO")
    assert _balance(tmp_path) == 250
    outbox = Outbox(path=tmp_path / "outbox.sqlite3")
    sent = await receipts(outbox)
    await outbox.close()
    assert len(sent) == 1 and sent[0]["key"] == "plan.receipt_done"
    assert sent[0]["dedupe"] in done
    # Balance every channel shows is the new one (the cache was dropped for this number).
    balance = await Phone(client, "u1b").send("1")
    assert balance == "END 您的话费余额为2.50元。"


async def test_a_plan_change_confirms_the_monthly_fee_and_the_first_of_next_month(
    app_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    phone = Phone(await app_client(), "u2")
    await phone.dial()
    await phone.press("7")
    await phone.press("1")
    assert (await phone.press("1")).startswith(
        f"CON 您选择了畅享38元套餐（流量10GB 通话200分钟）。\n月费38.00元，{NEXT_ZH}生效。\n"
        "1.确认\n2.取消"
    )
    assert (await phone.press("1")).startswith(f"END 办理成功：畅享38元套餐，{NEXT_ZH}生效")
    assert _balance(tmp_path) == 1250
    again = Phone(phone.client, "u2b")
    assert "(1/2) 98.更多" in await again.send("7")
    assert "下月起套餐：畅享38元套餐。" in await again.send("7*98")


async def test_a_gateway_retry_of_the_confirmation_is_the_same_screen_and_one_order(
    app_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await app_client()
    phone = Phone(client, "u3")
    await phone.dial()
    for key in TO_10GB:
        await phone.press(key)
    first = await phone.press("1")
    again = await phone.send("7*1*9*1*1")  # the gateway sends the same request again
    assert again == first and first.startswith("END 办理成功")
    assert _balance(tmp_path) == 250
    # Confirm pressed once more on a session that ended: no second order.
    later = await phone.send("7*1*9*1*1*1")
    assert later.startswith("END ") and "办理成功" not in later
    assert _balance(tmp_path) == 250
    outbox = Outbox(path=tmp_path / "outbox.sqlite3")
    assert len(await receipts(outbox)) == 1
    await outbox.close()


async def test_cancel_changes_nothing(
    app_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    phone = Phone(await app_client(), "u4")
    await phone.dial()
    for key in TO_10GB:
        await phone.press(key)
    assert await phone.press("2") == "END 已取消，未做任何变更。"
    assert _balance(tmp_path) == 1250


async def test_an_unknown_choice_on_the_offers_page_asks_again(
    app_client: Callable[..., Awaitable[Client]],
) -> None:
    phone = Phone(await app_client(), "u5")
    await phone.dial()
    await phone.press("7")
    await phone.press("1")
    await phone.press("9")
    await phone.press("9")  # page 3 has one offer
    again = await phone.press("2")
    assert again.startswith("CON 没有这个序号，请重新选择。\n可选套餐（3/3）")


async def test_insufficient_balance_and_suspended_say_why(
    app_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await app_client()
    poor = Phone(client, "u6", phone="+8613800138001")  # 0.05元
    await poor.dial()
    for key in TO_10GB:
        await poor.press(key)
    assert await poor.press("1") == "END 余额不足，办理未成功，未扣费。请充值后再试。"
    suspended = Phone(client, "u7", phone="+8613800138003")
    await suspended.dial()
    assert await suspended.press("7") == "END 您的号码已停机，请充值后再试。"


async def test_service_password_three_wrong_tries_lock_and_it_is_never_stored(
    app_client: Callable[..., Awaitable[Client]], tmp_path: Path, redis_url: str
) -> None:
    client = await app_client(require_password=True)
    phone = Phone(client, "u8")
    await phone.dial()
    for key in TO_10GB:
        await phone.press(key)
    assert (await phone.press("1")).startswith("CON 请输入6位服务密码：")
    assert (await phone.press("111111")).startswith("CON 服务密码错误，还可输入2次，请重新输入：")
    assert (await phone.press("222222")).startswith("CON 服务密码错误，还可输入1次，请重新输入：")
    assert await phone.press("333333") == (
        "END 服务密码错误次数过多，本次办理已锁定，未做任何变更。"
    )
    assert _balance(tmp_path) == 1250
    right = Phone(client, "u9")
    await right.dial()
    for key in (*TO_10GB, "1"):
        await right.press(key)
    assert (await right.press("246810")).startswith("END 办理成功：10GB流量包")
    raw = redis.Redis.from_url(redis_url)
    for key in raw.scan_iter("*"):
        value = raw.dump(key) or b""
        for secret in (b"246810", b"111111", b"222222", b"333333"):
            assert secret not in key and secret not in value, key
    raw.close()


async def test_http_provider_slow_order_is_accepted_then_the_sms_follows(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, sim: Sim
) -> None:
    settings = plan_settings(tmp_path, sim_url=sim.url, redis_url=redis_url, answer_window=0.3)
    app = create_app(settings)
    client = await aiohttp_client(app)
    phone = Phone(client, "h1")
    await phone.dial()
    for key in TO_10GB:
        await phone.press(key)
    await sim.fault(fault="slow_completion", ms=700, times=1)
    accepted = await phone.press("1")
    assert accepted.startswith("END 已受理，结果将短信通知。订单号PO")
    outbox = Outbox(path=tmp_path / "outbox.sqlite3")
    assert await receipts(outbox) == []
    await asyncio.sleep(0.8)
    assert await app[PLANS].reconcile_once() == 1
    sent = await receipts(outbox)
    assert [r["key"] for r in sent] == ["plan.receipt_done"] and sent[0]["dedupe"] in accepted
    assert (await sim.orders())["charges"] == {sent[0]["dedupe"]: 1}
    # The ordering system refusing before acceptance: nothing charged, said so.
    await sim.fault(fault="status", status=503, times=1)
    other = Phone(client, "h2")
    await other.dial()
    for key in ("7", "1", "9", "2"):
        await other.press(key)
    assert await other.press("1") == "END 办理系统暂时不可用，未扣费，请稍后再试。"
    # Repriced between the list and the confirmation: never ordered at another price.
    third = Phone(client, "h3")
    await third.dial()
    for key in ("7", "1", "9", "2"):
        await third.press(key)
    await sim.offering("addon-voice-100", price_minor=800)
    assert await third.press("1") == "END 该套餐已下架或价格已调整，未扣费，请重新选择。"
    assert len((await sim.orders())["orders"]) == 1
    await outbox.close()
