"""Plan change by SMS keyword (`BL <code>`): a confirmation reply, then the order."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.balance.ledger import LedgerStore
from hotline.store.outbox import Outbox
from hotline.web.app import create_app
from tests.plans.conftest import plan_settings, receipts
from tests.sms.conftest import kannel_query

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
SIG = "【hotline】"
_ids = itertools.count(1)


async def mo(client: Client, text: str, sender: str = "+8613800138000") -> str:
    query = kannel_query(text, sender=sender, message_id=f"bl{next(_ids)}")
    response = await client.get("/sms/kannel?" + query)
    assert response.status == 200, await response.text()
    return await response.text()


def _balance(tmp_path: Path) -> int:
    ledger = LedgerStore(tmp_path / "ledger.sqlite3")
    record = ledger.get("13800138000")
    ledger.close()
    assert record is not None
    return record.main_minor


async def test_keyword_with_a_code_confirms_then_orders(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    client = await aiohttp_client(create_app(plan_settings(tmp_path, redis_url=redis_url)))
    confirm = await mo(client, "bl １０")  # any case and width
    assert confirm.startswith(
        "您选择了10GB流量包（流量+10GB 当月有效）。立即生效，从余额扣除10.00元。"
    )
    assert "1.确认\n2.取消" in confirm and confirm.endswith(SIG)
    assert _balance(tmp_path) == 1250  # nothing before the confirmation
    done = await mo(client, "1")
    assert done.startswith("办理成功：10GB流量包")
    assert _balance(tmp_path) == 250
    outbox = Outbox(path=tmp_path / "outbox.sqlite3")
    assert [r["key"] for r in await receipts(outbox)] == ["plan.receipt_done"]
    await outbox.close()


async def test_keyword_alone_asks_for_the_code_and_an_unknown_code_says_so(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    client = await aiohttp_client(create_app(plan_settings(tmp_path, redis_url=redis_url)))
    assert (await mo(client, "BL")).startswith("请发送“BL+套餐编码”办理，如BL 10")
    assert (await mo(client, "BL 77")).startswith("未找到该套餐编码。请发送“BL+套餐编码”办理")
    assert (await mo(client, "10")).startswith("您选择了10GB流量包")  # a reply is the code
    assert await mo(client, "2") == "已取消，未做任何变更。" + SIG
    assert _balance(tmp_path) == 1250
