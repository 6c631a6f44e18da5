"""`/me/offers`, `/me/orders` and `/me/reminders` on a real app: real Redis, the embedded
plans provider on the real SQLite ledger, the real reminders store and SMS outbox. The
API and USSD (Africa's Talking over HTTP, the same app) must agree, an Idempotency-Key
must never order twice, and bad input gets the documented code."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import sqlalchemy
from aiohttp.test_utils import TestServer

from hotline.balance.ledger import LedgerStore
from hotline.balance.sim import create_sim_app
from hotline.plans.model import effective_date
from hotline.plans.tables import orders
from hotline.reminders.wiring import REMINDERS
from hotline.web.keys import PLANS
from tests.api.conftest import OTHER, PHONE, Api, Client, running
from tests.plans.conftest import KEY_ID, SECRET, Sim

SCOPES = (
    "balance:read,plan:read,offers:read,orders:write,orders:read,reminders:read,reminders:write"
)
POOR = "+8613800138001"  # 0.05元
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
NEXT = effective_date("next_month", TODAY)


def _extra(tmp_path: Path) -> dict[str, Any]:
    return {
        "plans": {
            "store_path": str(tmp_path / "plans.sqlite3"),
            "answer_window": 1.5,
            "poll_interval": 0.05,
        },
        "reminders": {
            "database_path": str(tmp_path / "reminders.sqlite3"),
            "quiet_start": "00:00",
            "quiet_end": "00:00",
        },
        "api": {"subscriber_rate": "10000/minute"},
    }


@pytest.fixture
async def app(tmp_path: Path, redis_url: str) -> AsyncIterator[Api]:
    async with running(tmp_path, redis_url, **_extra(tmp_path)) as found:
        yield found


async def _me(app: Api, phone: str = PHONE, scopes: str = SCOPES) -> dict[str, str]:
    who = app.register(f"app-{uuid.uuid4().hex[:8]}", scopes)
    token = await app.sign_in(await app.client_token(who), phone)
    return {"Authorization": f"Bearer {token}"}


def _balance(app: Api, number: str = "13800138000") -> int:
    ledger = LedgerStore(app.settings.balance.ledger_path)
    try:
        record = ledger.get(number)
        assert record is not None
        return record.main_minor
    finally:
        ledger.close()


def _orders(app: Api) -> list[dict[str, Any]]:
    engine = sqlalchemy.create_engine(f"sqlite:///{app.settings.plans.store_path}")
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sqlalchemy.select(orders))]
    finally:
        engine.dispose()


async def _ussd(client: Client, session: str, text: str, phone: str = PHONE) -> str:
    form = {"sessionId": session, "serviceCode": "*100#", "phoneNumber": phone, "text": text}
    response = await client.post("/ussd/africastalking", data=form)
    assert response.status == 200, await response.text()
    return await response.text()


async def _order(
    app: Api, auth: dict[str, str], key: str | None, **body: Any
) -> tuple[int, dict[str, Any]]:
    headers = dict(auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    r = await app.client.post("/api/v1/me/orders", json=body, headers=headers)
    found: dict[str, Any] = await r.json(content_type=None)
    return r.status, found


# ------------------------------------------------------------------ offers


async def test_offers_are_the_ussd_list_with_prices_in_minor_units(app: Api) -> None:
    auth = await _me(app)
    r = await app.client.get("/api/v1/me/offers", headers=auth)
    assert r.status == 200, await r.text()
    body = await r.json()
    ids = [o["id"] for o in body["offers"]]
    assert ids == ["plan-38", "plan-88", "addon-data-10g", "addon-voice-100", "addon-sms-100"]
    first = body["offers"][0]
    assert first["price"] == {"minor": 3800, "currency": "CNY", "exponent": 2, "display": "38.00元"}
    assert first["effect"] == "next_month" and first["effective_on"] == NEXT.isoformat()
    assert body["offers"][2]["effective_on"] == TODAY.isoformat()
    # USSD's 可选套餐 pages list the same offers in the same order.
    page = await _ussd(app.client, "o1", "7*1")
    assert "1.畅享38元套餐 38.00元\n2.畅享88元套餐 88.00元" in page
    en = await app.client.get("/api/v1/me/offers", headers={**auth, "Accept-Language": "en"})
    assert (await en.json())["offers"][0]["price"]["display"] == "CNY 38.00"


async def test_offers_for_a_suspended_number_and_without_the_scope(app: Api) -> None:
    suspended = await _me(app, "+8613800138003")
    r = await app.client.get("/api/v1/me/offers", headers=suspended)
    assert r.status == 409 and (await r.json())["code"] == "account_suspended"
    narrow = await _me(app, scopes="balance:read")
    r = await app.client.get("/api/v1/me/offers", headers=narrow)
    assert r.status == 403 and (await r.json())["code"] == "insufficient_scope"
    status, body = await _order(
        app, narrow, "k-narrow-0001", offer_id="addon-sms-100", price_minor=300
    )
    assert status == 403 and body["code"] == "insufficient_scope"


# ------------------------------------------------------------------ orders


async def test_an_api_order_completes_charges_once_and_sends_one_receipt(app: Api) -> None:
    auth = await _me(app)
    key = str(uuid.uuid4())
    status, first = await _order(app, auth, key, offer_id="addon-voice-100", price_minor=500)
    assert status == 200, first
    assert first["state"] == "completed" and first["pending"] is False
    assert first["charged"]["minor"] == 500 and first["order_id"].startswith("PO")
    assert _balance(app) == 750
    # The client retries (a timeout, a double tap): the same order, nothing charged again.
    for _ in range(3):
        status, again = await _order(app, auth, key, offer_id="addon-voice-100", price_minor=500)
        assert status == 200 and again == first
    assert _balance(app) == 750
    assert len(_orders(app)) == 1
    receipts = [r for r in app.outbox() if r["kind"] == "receipt"]
    assert len(receipts) == 1 and receipts[0]["dedupe"] == first["order_id"]
    assert receipts[0]["key"] == "plan.receipt_done"
    # USSD shows the new balance at once (the cache was dropped for this number).
    assert await _ussd(app.client, "b1", "1") == "END 您的话费余额为7.50元。"
    # The order reads back, for its owner only.
    r = await app.client.get(f"/api/v1/me/orders/{first['order_id']}", headers=auth)
    assert r.status == 200 and await r.json() == first
    other = await _me(app, OTHER)
    r = await app.client.get(f"/api/v1/me/orders/{first['order_id']}", headers=other)
    assert r.status == 404 and (await r.json())["code"] == "order_not_found"
    r = await app.client.get("/api/v1/me/orders/not-an-order", headers=auth)
    assert r.status == 404 and (await r.json())["code"] == "order_not_found"


async def test_a_plan_change_by_api_is_the_pending_plan_on_ussd(app: Api) -> None:
    auth = await _me(app)
    status, body = await _order(app, auth, "plan-change-0001", offer_id="plan-38", price_minor=3800)
    assert status == 200, body
    assert body["state"] == "completed" and body["effective_on"] == NEXT.isoformat()
    assert _balance(app) == 1250  # a monthly fee: nothing from the balance now
    assert "(1/2) 98.更多" in await _ussd(app.client, "p1", "7")
    assert "下月起套餐：畅享38元套餐。" in await _ussd(app.client, "p1", "7*98")


async def test_the_same_key_with_another_body_is_refused_and_orders_nothing(app: Api) -> None:
    auth = await _me(app)
    key = "reused-key-0001"
    status, first = await _order(app, auth, key, offer_id="addon-sms-100", price_minor=300)
    assert status == 200 and first["state"] == "completed"
    status, body = await _order(app, auth, key, offer_id="addon-voice-100", price_minor=500)
    assert status == 422 and body["code"] == "idempotency_key_reused"
    status, body = await _order(app, auth, key, offer_id="addon-sms-100", price_minor=301)
    assert status == 422 and body["code"] == "idempotency_key_reused"
    assert _balance(app) == 950 and len(_orders(app)) == 1
    # Another subscriber may use the same key: keys are per subscriber.
    other = await _me(app, OTHER)
    status, body = await _order(app, other, key, offer_id="addon-sms-100", price_minor=300)
    assert status != 422, body


async def test_missing_or_malformed_key_and_bad_bodies_say_why(app: Api) -> None:
    auth = await _me(app)
    for key in (None, "", "short", "has space in it", "x" * 65):
        status, body = await _order(app, auth, key, offer_id="addon-sms-100", price_minor=300)
        assert status == 400 and body["code"] == "idempotency_key_missing", (key, body)
        assert "Idempotency-Key" in body["detail"]
    status, body = await _order(app, auth, "bad-body-0001", offer_id="addon-sms-100")
    assert status == 400 and body["code"] == "bad_request"
    assert body["errors"][0]["field"] == "price_minor"
    status, body = await _order(app, auth, "bad-body-0002", offer="x", price_minor=1)
    assert status == 400 and body["code"] == "bad_request"
    assert _orders(app) == [] and _balance(app) == 1250


async def test_refusals_map_to_their_codes_and_charge_nothing(app: Api) -> None:
    auth = await _me(app)
    # Repriced since the client showed it (or never that price): nothing placed.
    status, body = await _order(
        app, auth, "repriced-0001", offer_id="addon-data-10g", price_minor=900
    )
    assert status == 409 and body["code"] == "offer_changed"
    status, body = await _order(
        app, auth, "unknown-0001", offer_id="no-such-offer", price_minor=100
    )
    assert status == 409 and body["code"] == "offer_changed"
    # The current plan is not on offer to its holder.
    status, body = await _order(app, auth, "current-0001", offer_id="plan-58", price_minor=5800)
    assert status == 409 and body["code"] == "offer_changed", body
    assert _balance(app) == 1250 and _orders(app) == []
    # A bundle bought once, then again under a new key: already has it, charged once.
    status, body = await _order(app, auth, "bundle-0001", offer_id="addon-sms-100", price_minor=300)
    assert status == 200 and body["state"] == "completed"
    status, body = await _order(app, auth, "bundle-0002", offer_id="addon-sms-100", price_minor=300)
    assert status == 409 and body["code"] == "already_has", body
    assert _balance(app) == 950
    poor = await _me(app, POOR)
    status, body = await _order(app, poor, "poor-0001", offer_id="addon-data-10g", price_minor=1000)
    assert status == 409 and body["code"] == "insufficient_balance"
    assert body["title"] == "余额不足，办理未成功，未扣费。"
    # The same key again: the same refusal, still one journalled order, nothing charged.
    status, again = await _order(
        app, poor, "poor-0001", offer_id="addon-data-10g", price_minor=1000
    )
    assert status == 409 and again["code"] == "insufficient_balance"
    assert _balance(app, "13800138001") == 5
    reasons = sorted(str(o["reason"]) for o in _orders(app))
    assert reasons == ["None", "already_has", "insufficient_balance"]


# ------------------------------------------------------------------ reminders


async def test_a_reminder_set_by_api_is_the_one_the_ussd_menu_shows(app: Api) -> None:
    auth = await _me(app)
    r = await app.client.get("/api/v1/me/reminders", headers=auth)
    body = await r.json()
    assert r.status == 200 and body["active"] is False and body["threshold"] is None
    assert [c["minor"] for c in body["choices"]] == [500, 1000, 2000, 5000]
    r = await app.client.put("/api/v1/me/reminders", json={"threshold_minor": 1000}, headers=auth)
    body = await r.json()
    assert r.status == 200, body
    assert body["active"] is True and body["threshold"]["display"] == "10.00元"
    assert body["text"] == "已开通余额提醒：话费低于10元时将短信通知您。回复QXTX取消提醒。"
    assert (await _ussd(app.client, "r1", "8")).startswith("CON 当前提醒值为10元。")
    records = await app.client.server.app[REMINDERS].store.consent("13800138000")
    assert [(r.action, r.channel, r.threshold_minor) for r in records] == [("in", "api", 1000)]
    # Set on USSD, read by API.
    assert (await _ussd(app.client, "r2", "8*3")).startswith("END 已开通余额提醒：话费低于20元")
    r = await app.client.get("/api/v1/me/reminders", headers={**auth, "Accept-Language": "en"})
    body = await r.json()
    assert body["threshold"]["minor"] == 2000 and body["text"] == "Your reminder is set at CNY 20."
    r = await app.client.delete("/api/v1/me/reminders", headers=auth)
    assert r.status == 200 and (await r.json())["active"] is False
    assert (await _ussd(app.client, "r3", "8")).startswith("CON 话费低于多少元时短信提醒您？")
    r = await app.client.delete("/api/v1/me/reminders", headers=auth)
    assert r.status == 200 and (await r.json())["active"] is False


async def test_a_threshold_not_offered_is_400_with_the_choices(app: Api) -> None:
    auth = await _me(app)
    for minor in (700, 1050, 0):
        r = await app.client.put(
            "/api/v1/me/reminders", json={"threshold_minor": minor}, headers=auth
        )
        body = await r.json()
        assert r.status == 400 and body["code"] == "invalid_threshold", body
        assert "500, 1000, 2000, 5000" in body["detail"]
    for bad in ({"threshold_minor": "ten"}, {"threshold": 10}, {}):
        r = await app.client.put("/api/v1/me/reminders", json=bad, headers=auth)
        assert r.status == 400 and (await r.json())["code"] == "bad_request"
    reader = await _me(app, scopes="reminders:read")
    r = await app.client.put("/api/v1/me/reminders", json={"threshold_minor": 500}, headers=reader)
    assert r.status == 403 and (await r.json())["code"] == "insufficient_scope"
    assert await app.client.server.app[REMINDERS].store.consent("13800138000") == []


# ------------------------------------------------------------------ the billing simulator


@pytest.fixture
async def billing() -> AsyncIterator[Sim]:
    """The billing simulator with its TMF622/TMF637 endpoints, on a loopback port."""
    server = TestServer(create_sim_app(key_id=KEY_ID, secret=SECRET), host="127.0.0.1")
    await server.start_server(access_log=None)
    async with aiohttp.ClientSession() as session:
        yield Sim(server, session)
    await server.close()


async def test_a_slow_order_is_pending_then_completes_once_over_http(
    tmp_path: Path, redis_url: str, billing: Sim
) -> None:
    extra = _extra(tmp_path)
    extra["plans"] |= {
        "provider": "http",
        "url": billing.url,
        "key_id": KEY_ID,
        "secret": SECRET,
        "answer_window": 0.3,
        "deadline": 0.6,
        "read_timeout": 2.0,
        "retry_backoff": 0.01,
        "retry_min_budget": 0.05,
    }
    async with running(tmp_path, redis_url, **extra) as app:
        auth = await _me(app)
        await billing.fault(fault="slow_completion", ms=700, times=1)
        key = "slow-order-0001"
        status, first = await _order(app, auth, key, offer_id="addon-data-10g", price_minor=1000)
        assert status == 200, first
        assert first["pending"] is True and first["state"] in ("acknowledged", "inProgress")
        # The app retries while it is pending: the same order, nothing submitted again.
        status, again = await _order(app, auth, key, offer_id="addon-data-10g", price_minor=1000)
        assert status == 200 and again["order_id"] == first["order_id"]
        await asyncio.sleep(0.8)
        await app.client.server.app[PLANS].reconcile_once()
        r = await app.client.get(f"/api/v1/me/orders/{first['order_id']}", headers=auth)
        done = await r.json()
        assert r.status == 200 and done["state"] == "completed" and done["pending"] is False
        status, last = await _order(app, auth, key, offer_id="addon-data-10g", price_minor=1000)
        assert status == 200 and last == done
        assert (await billing.orders())["charges"] == {first["order_id"]: 1}
        receipts = [r for r in app.outbox() if r["kind"] == "receipt"]
        assert [r["dedupe"] for r in receipts] == [first["order_id"]]
        # The ordering system refusing before it accepted: 503 with a code, no charge.
        await billing.fault(fault="status", status=503, times=1)
        status, body = await _order(
            app, auth, "down-0001", offer_id="addon-voice-100", price_minor=500
        )
        assert status == 503 and body["code"] == "ordering_unavailable", body
        assert body["retry_after"] == 30
        assert (await billing.orders())["charges"] == {first["order_id"]: 1}
