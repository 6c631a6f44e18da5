"""Orders through the `http` provider against the billing simulator's TMF622 endpoints
and its fault kinds: one order per order id and money moved at most once, whatever the
upstream does; an ambiguous submission is polled before anyone is told anything."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hotline.plans.desk import PlansDesk
from hotline.plans.model import OrderRequest
from hotline.store.outbox import Outbox
from tests.plans.conftest import MakeDesk, Sim, plan_settings, receipts

PHONE = "13800138000"  # 12.50元 in the simulator's demo seed
ADDON = "addon-data-10g"  # 10.00元, at once


async def _order(desk: PlansDesk, oid: str, offer: str = ADDON, price: int = 1000) -> object:
    return await desk.place(PHONE, offer, price, oid, "zh-CN")


async def _one_order(sim: Sim, oid: str) -> dict[str, object]:
    book = await sim.orders()
    mine = [o for o in book["orders"] if o["externalId"] == oid]
    assert len(mine) == 1, book
    return mine[0]


async def test_an_order_completes_charges_once_and_sends_one_receipt(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path, outbox: Outbox
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url))
    placed = await desk.place(PHONE, ADDON, 1000, "PO-A1", "zh-CN")
    assert not placed.pending and placed.outcome.state == "completed"
    assert placed.outcome.charged_minor == 1000
    assert await sim.main_minor(PHONE) == 250
    again = await desk.place(PHONE, ADDON, 1000, "PO-A1", "zh-CN")  # confirm pressed twice
    assert again.outcome.state == "completed"
    order = await _one_order(sim, "PO-A1")
    assert order["charged_minor"] == 1000
    assert (await sim.orders())["charges"] == {"PO-A1": 1}
    assert await sim.main_minor(PHONE) == 250
    sent = await receipts(outbox)
    assert [(r["key"], r["dedupe"]) for r in sent] == [("plan.receipt_done", "PO-A1")]


async def test_a_second_confirmation_of_a_new_quote_is_refused_as_already_held(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url))
    assert (await desk.place(PHONE, ADDON, 1000, "PO-B1", "zh-CN")).outcome.state == "completed"
    second = await desk.place(PHONE, ADDON, 1000, "PO-B2", "zh-CN")
    assert (second.outcome.state, second.outcome.reason) == ("rejected", "already_has")
    assert await sim.main_minor(PHONE) == 250


async def test_slow_completion_is_accepted_then_reconciled_with_one_receipt(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path, outbox: Outbox
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url, answer_window=0.3))
    await sim.fault(fault="slow_completion", ms=800)
    placed = await desk.place(PHONE, ADDON, 1000, "PO-S1", "zh-CN")
    assert placed.pending  # "已受理，结果将短信通知": never a timeout screen
    assert await receipts(outbox) == []
    row = desk.journal.get("PO-S1")
    assert row is not None and row.state == "inProgress"
    await asyncio.sleep(0.9)
    assert await desk.reconcile_once() == 1
    assert await desk.reconcile_once() == 0  # nothing left to do, nothing sent twice
    row = desk.journal.get("PO-S1")
    assert row is not None and row.state == "completed" and row.notified
    assert [r["dedupe"] for r in await receipts(outbox)] == ["PO-S1"]
    assert (await sim.orders())["charges"] == {"PO-S1": 1}
    assert await sim.main_minor(PHONE) == 250


async def test_timeout_after_acceptance_is_polled_not_reported_as_a_failure(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url, deadline=0.3))
    await sim.fault(fault="timeout_after_accept", times=1)
    placed = await desk.place(PHONE, ADDON, 1000, "PO-T1", "zh-CN")
    assert placed.outcome.state == "completed" and not placed.pending
    order = await _one_order(sim, "PO-T1")
    assert order["submissions"] == 1  # polled by externalId, never submitted again
    assert (await sim.orders())["charges"] == {"PO-T1": 1}


async def test_an_answer_that_does_not_validate_is_reconciled(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url))
    await sim.fault(fault="invalid_answer", times=1)
    placed = await desk.place(PHONE, ADDON, 1000, "PO-V1", "zh-CN")
    assert placed.outcome.state == "completed"
    assert (await sim.orders())["charges"] == {"PO-V1": 1}


async def test_a_duplicated_submission_is_one_order_and_one_charge(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url))
    await sim.fault(fault="duplicate_submission", times=1)
    placed = await desk.place(PHONE, ADDON, 1000, "PO-D1", "zh-CN")
    assert placed.outcome.state == "completed"
    order = await _one_order(sim, "PO-D1")
    assert order["submissions"] == 2
    assert (await sim.orders())["charges"] == {"PO-D1": 1}
    assert await sim.main_minor(PHONE) == 250


async def test_a_rejection_is_told_at_once_without_a_receipt_or_a_charge(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path, outbox: Outbox
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url))
    await sim.fault(fault="reject", reason="not_eligible", times=1)
    placed = await desk.place(PHONE, ADDON, 1000, "PO-R1", "zh-CN")
    assert (placed.outcome.state, placed.outcome.reason) == ("rejected", "not_eligible")
    assert await receipts(outbox) == []
    assert await sim.main_minor(PHONE) == 1250


async def test_insufficient_balance_is_the_upstreams_answer(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path
) -> None:
    await sim.put(PHONE, {"status": "active", "main_minor": 500})
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url))
    placed = await desk.place(PHONE, ADDON, 1000, "PO-I1", "zh-CN")
    assert placed.outcome.reason == "insufficient_balance"
    assert await sim.main_minor(PHONE) == 500


async def test_the_ordering_system_down_is_unavailable_and_nothing_placed(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url))
    await sim.fault(fault="status", status=503, times=1)
    placed = await desk.place(PHONE, ADDON, 1000, "PO-U1", "zh-CN")
    assert (placed.outcome.state, placed.outcome.reason) == ("failed", "unavailable")
    assert (await sim.orders())["orders"] == []


async def test_a_repriced_or_withdrawn_offer_is_never_ordered_at_another_price(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url))
    await sim.offering(ADDON, price_minor=1200)
    placed = await desk.place(PHONE, ADDON, 1000, "PO-W1", "zh-CN")
    assert placed.outcome.reason == "withdrawn"
    await sim.offering("addon-sms-100", active=False)
    placed = await desk.place(PHONE, "addon-sms-100", 300, "PO-W2", "zh-CN")
    assert placed.outcome.reason == "withdrawn"
    assert (await sim.orders())["posts"] == 0


async def test_an_order_the_upstream_never_saw_is_resubmitted_under_its_id(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path, outbox: Outbox
) -> None:
    """A worker journalled the order and died before sending it: the reconciler places it
    (the subscriber confirmed it) under the same id, once."""
    clock = [1000.0]
    settings = plan_settings(tmp_path, sim_url=sim.url)
    desk = await make_desk(settings)
    desk.journal._clock = lambda: clock[0]  # the journal's time, moved by hand
    desk._clock = lambda: clock[0]
    offer = await desk.offer(PHONE, ADDON)
    assert offer is not None
    desk.journal.begin(OrderRequest("PO-X1", PHONE, offer), "zh-CN")
    assert await desk.reconcile_once() == 0  # too young: it may still be on its way
    assert (await sim.orders())["orders"] == []
    clock[0] += 10
    assert await desk.reconcile_once() == 1
    clock[0] += 10
    assert await desk.reconcile_once() == 0
    assert (await sim.orders())["charges"] == {"PO-X1": 1}
    assert [r["dedupe"] for r in await receipts(outbox)] == ["PO-X1"]


async def test_current_plan_and_offers_come_from_the_provider(
    sim: Sim, make_desk: MakeDesk, tmp_path: Path
) -> None:
    desk = await make_desk(plan_settings(tmp_path, sim_url=sim.url))
    plan = await desk.current(PHONE)
    assert (plan.name, plan.monthly_fee_minor, plan.allowance.sms) == ("畅享58元套餐", 5800, 100)
    assert plan.renews_on is not None and plan.renews_on.day == 1
    offers = [o.id for o in await desk.offers(PHONE)]
    assert "plan-58" not in offers and ADDON in offers
