"""The embedded provider on the durable store (SQLite and PostgreSQL) and the balance
ledger: demo catalog, eligibility, one charge per order id, fresh balances after."""

from __future__ import annotations

from pathlib import Path

from hotline.balance.ledger import LedgerStore
from hotline.plans.embedded import EmbeddedPlans
from hotline.plans.model import OrderRequest
from hotline.store.outbox import Outbox
from tests.plans.conftest import MakeDesk, plan_settings, receipts

PHONE = "13800138000"  # 12.50元, 3 GB, on 畅享58
GB = 1024**3


def _ledger(tmp_path: Path) -> LedgerStore:
    return LedgerStore(tmp_path / "ledger.sqlite3")


async def test_current_plan_and_offers_from_the_seeded_catalog(
    make_desk: MakeDesk, tmp_path: Path, store_url: str
) -> None:
    desk = await make_desk(plan_settings(tmp_path, store_url=store_url))
    plan = await desk.current(PHONE)
    assert (plan.name, plan.monthly_fee_minor) == ("畅享58元套餐", 5800)
    assert plan.allowance.data_bytes == 30 * GB and plan.renews_on is not None
    offers = [o.id for o in await desk.offers(PHONE)]
    assert offers[:2] == ["plan-38", "plan-88"] and "plan-58" not in offers


async def test_a_bundle_charges_the_ledger_once_and_adds_its_data(
    make_desk: MakeDesk, tmp_path: Path, store_url: str, outbox: Outbox
) -> None:
    desk = await make_desk(plan_settings(tmp_path, store_url=store_url))
    placed = await desk.place(PHONE, "addon-data-10g", 1000, "PO-E1", "zh-CN")
    assert placed.outcome.state == "completed" and placed.outcome.charged_minor == 1000
    ledger = _ledger(tmp_path)
    record = ledger.get(PHONE)
    assert record is not None and record.main_minor == 250
    data = next(b for b in record.buckets if b.usage_type == "data")
    assert data.remaining == 13 * GB
    # The same order again (a retry, a second confirm): the same answer, no second charge.
    again = await desk.place(PHONE, "addon-data-10g", 1000, "PO-E1", "zh-CN")
    assert again.outcome.state == "completed"
    provider = desk.provider
    assert isinstance(provider, EmbeddedPlans)
    offer = provider.store.offer("addon-data-10g")
    assert offer is not None
    resubmitted = await provider.submit(OrderRequest("PO-E1", PHONE, offer))
    assert resubmitted.state == "completed"
    record = ledger.get(PHONE)
    assert record is not None and record.main_minor == 250
    assert [r["dedupe"] for r in await receipts(outbox)] == ["PO-E1"]
    assert (await desk.current(PHONE)).name == "畅享58元套餐"
    assert (await desk.current(PHONE)).addons == ("10GB流量包",)
    ledger.close()


async def test_a_plan_change_takes_effect_next_month_and_charges_nothing_now(
    make_desk: MakeDesk, tmp_path: Path, store_url: str
) -> None:
    desk = await make_desk(plan_settings(tmp_path, store_url=store_url))
    placed = await desk.place(PHONE, "plan-38", 3800, "PO-E2", "zh-CN")
    assert placed.outcome.state == "completed"
    assert placed.outcome.effective_on is not None and placed.outcome.effective_on.day == 1
    plan = await desk.current(PHONE)
    assert (plan.name, plan.pending) == ("畅享58元套餐", "畅享38元套餐")
    record = _ledger(tmp_path).get(PHONE)
    assert record is not None and record.main_minor == 1250
    again = await desk.place(PHONE, "plan-38", 3800, "PO-E3", "zh-CN")
    assert again.outcome.reason == "withdrawn"  # no longer offered: it is next month's plan


async def test_refusals_charge_nothing(make_desk: MakeDesk, tmp_path: Path, store_url: str) -> None:
    desk = await make_desk(plan_settings(tmp_path, store_url=store_url))
    poor = await desk.place("13800138001", "addon-data-10g", 1000, "PO-E4", "zh-CN")
    assert poor.outcome.reason == "insufficient_balance"
    suspended = await desk.place("13800138003", "addon-sms-100", 300, "PO-E5", "zh-CN")
    assert suspended.outcome.reason == "suspended"
    repriced = await desk.place(PHONE, "addon-sms-100", 200, "PO-E6", "zh-CN")
    assert repriced.outcome.reason == "withdrawn"
    ledger = _ledger(tmp_path)
    for number, balance in (("13800138001", 5), ("13800138003", 0), (PHONE, 1250)):
        record = ledger.get(number)
        assert record is not None and record.main_minor == balance
    ledger.close()


async def test_service_password_is_checked_against_its_digest(
    make_desk: MakeDesk, tmp_path: Path, store_url: str
) -> None:
    desk = await make_desk(plan_settings(tmp_path, store_url=store_url))
    assert await desk.verify_password(PHONE, "246810")
    assert not await desk.verify_password(PHONE, "123456")
    assert not await desk.verify_password("13800138005", "246810")
