"""The simulator's product catalog, inventory and ordering (TMF620/637/622 style).

    GET  /tmf-api/productInventory/v4/product?relatedParty.id=<msisdn>
    GET  /tmf-api/productCatalogManagement/v4/productOffering?relatedParty.id=<msisdn>
    POST /tmf-api/productOrderingManagement/v4/productOrder        (externalId: idempotent)
    GET  /tmf-api/productOrderingManagement/v4/productOrder?externalId=<id>
    POST /v1/service-password/verify
    admin: POST|DELETE /_sim/order-faults, GET /_sim/orders, PUT /_sim/offerings/{id}

All signed like the balance dialects. An order is placed once per `externalId`: the
same id again answers the order placed first (200, not 201), and money moves only when
an order completes, once. Order faults (their own table, so they never touch lookups):

- `slow_completion` {ms}: the order stays `inProgress` for `ms`, then completes;
- `reject` {reason}: the order is `rejected` with `errorMessage[0].code = reason`;
- `timeout_after_accept`: the order is placed (and completes), the answer never comes;
- `duplicate_submission`: the request arrives twice (a retransmission): handled twice,
  answered once;
- `invalid_answer`: the order is placed, the answer does not validate;
- `status` {status}: refused before anything is placed (503: the system is down).

Each takes `msisdn` (only this number) and `times` (then it stops).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from hotline.balance.ledger import LOCAL_TZ
from hotline.balance.msisdn import canonical_msisdn
from hotline.balance.sim.store import SimBucket
from hotline.plans.embedded import DEMO_OFFERS, DEMO_PASSWORDS, DEMO_PLANS
from hotline.plans.model import Offer, effective_date
from hotline.plans.tmf import INVENTORY_PATH, OFFERING_PATH, ORDER_PATH, PASSWORD_PATH

__all__ = ["ORDER_FAULTS", "SimOrders", "install_orders"]

ORDER_FAULTS: dict[str, dict[str, type]] = {
    "slow_completion": {"ms": int},
    "reject": {"reason": str},
    "timeout_after_accept": {},
    "duplicate_submission": {},
    "invalid_answer": {},
    "status": {"status": int},
}


@dataclass(slots=True)
class OrderFault:
    fault: str
    params: dict[str, Any]
    msisdn: str | None = None
    times: int | None = None
    hits: int = 0


@dataclass(slots=True)
class SimOrder:
    id: str
    external_id: str
    msisdn: str
    offer: Offer
    state: str = "acknowledged"
    complete_at: float = 0.0
    reason: str | None = None
    charged_minor: int = 0
    submissions: int = 1
    effective_on: str | None = None


@dataclass
class SimOrders:
    """The catalog, each number's products and every order placed."""

    monotonic: Any = time.monotonic
    offerings: dict[str, Offer] = field(default_factory=dict)
    withdrawn: set[str] = field(default_factory=set)
    plans: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    addons: dict[str, list[str]] = field(default_factory=dict)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    faults: list[OrderFault] = field(default_factory=list)
    charges: Counter[str] = field(default_factory=Counter)
    posts: int = 0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.offerings = {o.id: o for o in DEMO_OFFERS}
        self.withdrawn.clear()
        self.plans = dict(DEMO_PLANS)
        self.pending.clear()
        self.addons.clear()
        self.orders.clear()
        self.faults.clear()
        self.charges.clear()
        self.posts = 0

    def add_fault(self, doc: Any) -> OrderFault:
        if not isinstance(doc, dict) or doc.get("fault") not in ORDER_FAULTS:
            raise ValueError(f"fault: one of {', '.join(sorted(ORDER_FAULTS))}")
        name = doc["fault"]
        params: dict[str, Any] = {}
        for key, value in doc.items():
            if key in ("fault", "msisdn", "times"):
                continue
            kind = ORDER_FAULTS[name].get(key)
            if kind is None or not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"{key}: not a parameter of {name}")
            params[key] = value
        times = doc.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times: a positive integer")
        msisdn = doc.get("msisdn")
        rule = OrderFault(
            name, params, None if msisdn is None else canonical_msisdn(str(msisdn)), times
        )
        self.faults.append(rule)
        return rule

    def pick(self, msisdn: str) -> OrderFault | None:
        for rule in self.faults:
            if rule.msisdn not in (None, msisdn) or rule.times == 0:
                continue
            if rule.times is not None:
                rule.times -= 1
            rule.hits += 1
            return rule
        return None

    def plan_of(self, msisdn: str) -> str:
        return self.plans.get(msisdn, "plan-38")


ORDERS = web.AppKey("SIM_ORDERS", SimOrders)


def _price(minor: int, currency: str) -> dict[str, Any]:
    return {"unit": currency, "value": float(Decimal(minor) / 100)}


def _chars(offer: Offer) -> list[dict[str, Any]]:
    return [
        {"name": "kind", "value": offer.kind},
        {"name": "effect", "value": offer.effect},
        {"name": "code", "value": offer.code},
        {"name": "dataBytes", "value": offer.allowance.data_bytes},
        {"name": "voiceSeconds", "value": offer.allowance.voice_seconds},
        {"name": "sms", "value": offer.allowance.sms},
        {"name": "requiresPassword", "value": offer.requires_password},
    ]


def _product(offer: Offer, status: str, renews: str | None) -> dict[str, Any]:
    return {
        "id": f"prd-{offer.id}",
        "name": offer.name,
        "status": status,
        "productOffering": {"id": offer.id, "name": offer.name},
        "productPrice": [
            {
                "priceType": "recurring" if offer.kind == "plan" else "oneTime",
                "price": _price(offer.price_minor, offer.currency),
            }
        ],
        "productCharacteristic": _chars(offer),
        "renewalDate": renews,
        "@type": "Product",
    }


def _order_doc(order: SimOrder) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": order.id,
        "externalId": order.external_id,
        "state": order.state,
        "relatedParty": [{"id": order.msisdn, "role": "customer"}],
        "productOrderItem": [
            {"id": "1", "productOffering": {"id": order.offer.id}, "state": order.state}
        ],
        "chargedAmount": _price(order.charged_minor, order.offer.currency),
        "@type": "ProductOrder",
    }
    if order.effective_on is not None:
        doc["requestedStartDate"] = order.effective_on
    if order.reason is not None:
        doc["errorMessage"] = [{"code": order.reason, "reason": order.reason, "@type": "Error"}]
    return doc


def _today(app: web.Application) -> Any:
    from hotline.balance.sim.app import SIM

    return app[SIM].now().astimezone(LOCAL_TZ).date()


def _complete(app: web.Application, order: SimOrder) -> None:
    """Settle an order: checks, then the charge and the product — once."""
    from hotline.balance.sim.app import SIM

    book = app[ORDERS]
    sub = app[SIM].subscribers.get(order.msisdn)
    offer = order.offer
    held = {book.plan_of(order.msisdn), book.pending.get(order.msisdn)}
    held.update(book.addons.get(order.msisdn, []))
    today = _today(app)
    reason: str | None = None
    if sub is None:
        reason = "not_eligible"
    elif sub.status != "active":
        reason = "suspended"
    elif offer.id in held:
        reason = "already_has"
    elif offer.effect == "now" and (sub.main_minor or 0) < offer.price_minor:
        reason = "insufficient_balance"
    if reason is not None or sub is None:
        order.state, order.reason = "rejected", reason
        return
    if offer.effect == "now":
        sub.main_minor = (sub.main_minor or 0) - offer.price_minor
        order.charged_minor = offer.price_minor
        book.charges[order.external_id] += 1
    if offer.kind == "plan":
        book.pending[order.msisdn] = offer.id
    else:
        book.addons.setdefault(order.msisdn, []).append(offer.id)
        for kind, amount in (
            ("data", offer.allowance.data_bytes),
            ("voice", offer.allowance.voice_seconds),
            ("sms", offer.allowance.sms),
        ):
            if amount:
                bucket = next((b for b in sub.buckets if b.usage_type == kind), None)
                if bucket is None:
                    sub.buckets.append(SimBucket(kind, amount))
                else:
                    bucket.remaining += amount
    order.effective_on = effective_date(offer.effect, today).isoformat()
    order.state = "completed"


def _refresh(app: web.Application, order: SimOrder) -> None:
    if (
        order.state in ("acknowledged", "inProgress")
        and app[ORDERS].monotonic() >= order.complete_at
    ):
        _complete(app, order)


def _problem(status: int, code: str) -> web.Response:
    return web.json_response({"code": code, "status": status}, status=status)


async def _authorized(request: web.Request) -> tuple[bytes, web.Response | None]:
    from hotline.balance.sim.app import SIM

    sim = request.app[SIM]
    body = await request.read()
    problem = sim.check_auth(request, body)
    if problem is not None:
        sim.auth_failures += 1
        return body, _problem(401, problem)
    return body, None


def _msisdn(request: web.Request) -> str | None:
    try:
        return canonical_msisdn(request.query.get("relatedParty.id", ""))
    except ValueError:
        return None


async def get_inventory(request: web.Request) -> web.Response:
    from hotline.balance.sim.app import SIM

    _, refused = await _authorized(request)
    if refused is not None:
        return refused
    msisdn = _msisdn(request)
    if msisdn is None:
        return _problem(400, "INVALID_REQUEST")
    sub = request.app[SIM].subscribers.get(msisdn)
    if sub is None:
        return _problem(404, "SUBSCRIBER_NOT_FOUND")
    book = request.app[ORDERS]
    renews = effective_date("next_month", _today(request.app)).isoformat()
    status = "active" if sub.status == "active" else "suspended"
    items = [_product(book.offerings[book.plan_of(msisdn)], status, renews)]
    if msisdn in book.pending:
        items.append(_product(book.offerings[book.pending[msisdn]], "pendingActive", None))
    items.extend(_product(book.offerings[a], "active", None) for a in book.addons.get(msisdn, []))
    return web.json_response(items)


async def get_offerings(request: web.Request) -> web.Response:
    from hotline.balance.sim.app import SIM

    _, refused = await _authorized(request)
    if refused is not None:
        return refused
    msisdn = _msisdn(request)
    if msisdn is None:
        return _problem(400, "INVALID_REQUEST")
    if msisdn not in request.app[SIM].subscribers:
        return _problem(404, "SUBSCRIBER_NOT_FOUND")
    book = request.app[ORDERS]
    held = {book.plan_of(msisdn), book.pending.get(msisdn)}
    items = [
        {
            "id": o.id,
            "name": o.name,
            "description": o.change,
            "lifecycleStatus": "Retired" if o.id in book.withdrawn else "Active",
            "productOfferingPrice": [
                {
                    "priceType": "recurring" if o.effect == "next_month" else "oneTime",
                    "price": _price(o.price_minor, o.currency),
                }
            ],
            "prodSpecCharValueUse": _chars(o),
            "@type": "ProductOffering",
        }
        for o in book.offerings.values()
        if o.id not in held
    ]
    return web.json_response(items)


def _place(app: web.Application, doc: Any, delay_ms: int, rejection: str | None) -> SimOrder:
    """The order under the body's externalId: the one placed before, or a new one."""
    book = app[ORDERS]
    external = doc["externalId"]
    found = book.orders.get(external)
    if found is not None:
        found.submissions += 1
        return found
    msisdn = canonical_msisdn(doc["relatedParty"][0]["id"])
    offer_id = doc["productOrderItem"][0]["productOffering"]["id"]
    offer = book.offerings[offer_id]
    order = SimOrder(f"SO{len(book.orders) + 1:06d}", external, msisdn, offer)
    book.orders[external] = order
    if rejection is not None or offer_id in book.withdrawn:
        order.state, order.reason = "rejected", rejection or "withdrawn"
    elif delay_ms > 0:
        order.state, order.complete_at = "inProgress", book.monotonic() + delay_ms / 1000
    else:
        _complete(app, order)
    return order


def _valid_order(doc: Any, book: SimOrders) -> bool:
    try:
        external = doc["externalId"]
        canonical_msisdn(doc["relatedParty"][0]["id"])
        offer_id = doc["productOrderItem"][0]["productOffering"]["id"]
    except (KeyError, IndexError, TypeError, ValueError):
        return False
    return isinstance(external, str) and 0 < len(external) <= 64 and offer_id in book.offerings


async def post_order(request: web.Request) -> web.StreamResponse:
    from hotline.balance.sim.app import _abort, _until_closed

    body, refused = await _authorized(request)
    if refused is not None:
        return refused
    book = request.app[ORDERS]
    book.posts += 1
    try:
        doc = json.loads(body)
    except ValueError:
        return _problem(400, "INVALID_REQUEST")
    if not _valid_order(doc, book):
        return _problem(400, "INVALID_REQUEST")
    rule = book.pick(canonical_msisdn(doc["relatedParty"][0]["id"]))
    fault = rule.fault if rule is not None else ""
    params = rule.params if rule is not None else {}
    if fault == "status":
        return _problem(int(params.get("status", 503)), "UNAVAILABLE")
    known = doc["externalId"] in book.orders
    delay = int(params.get("ms", 1500)) if fault == "slow_completion" else 0
    rejection = str(params.get("reason", "not_eligible")) if fault == "reject" else None
    order = _place(request.app, doc, delay, rejection)
    if fault == "duplicate_submission":
        await asyncio.sleep(0)
        order = _place(request.app, doc, delay, rejection)  # the retransmitted copy
    if fault == "timeout_after_accept":
        await _until_closed(request, 3600)
        return _abort(request)
    if fault == "invalid_answer":
        return web.json_response({"id": order.id, "state": "Done!"}, status=201)
    return web.json_response(_order_doc(order), status=200 if known else 201)


async def get_orders(request: web.Request) -> web.Response:
    _, refused = await _authorized(request)
    if refused is not None:
        return refused
    order = request.app[ORDERS].orders.get(request.query.get("externalId", ""))
    if order is None:
        return web.json_response([])
    _refresh(request.app, order)
    return web.json_response([_order_doc(order)])


async def verify_password(request: web.Request) -> web.Response:
    body, refused = await _authorized(request)
    if refused is not None:
        return refused
    try:
        doc = json.loads(body)
        msisdn = canonical_msisdn(doc["msisdn"])
        password = doc["password"]
    except (ValueError, KeyError, TypeError):
        return _problem(400, "INVALID_REQUEST")
    return web.json_response({"valid": DEMO_PASSWORDS.get(msisdn) == password})


async def admin_faults(request: web.Request) -> web.Response:
    book = request.app[ORDERS]
    if request.method == "DELETE":
        book.faults.clear()
        return web.json_response({"ok": True})
    try:
        rule = book.add_fault(await request.json())
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    return web.json_response({"fault": rule.fault, "params": rule.params}, status=201)


async def admin_orders(request: web.Request) -> web.Response:
    book = request.app[ORDERS]
    for order in book.orders.values():
        _refresh(request.app, order)
    return web.json_response(
        {
            "posts": book.posts,
            "orders": [
                {
                    "externalId": o.external_id,
                    "state": o.state,
                    "reason": o.reason,
                    "submissions": o.submissions,
                    "charged_minor": o.charged_minor,
                }
                for o in book.orders.values()
            ],
            "charges": dict(book.charges),
        }
    )


async def admin_offering(request: web.Request) -> web.Response:
    """`{"active": false}` withdraws an offering; `{"price_minor": 4800}` reprices it."""
    book = request.app[ORDERS]
    offer = book.offerings.get(request.match_info["id"])
    doc = await request.json()
    if offer is None or not isinstance(doc, dict):
        raise web.HTTPBadRequest(text="no such offering")
    if doc.get("active") is False:
        book.withdrawn.add(offer.id)
    price = doc.get("price_minor")
    if isinstance(price, int) and not isinstance(price, bool) and price >= 0:
        from dataclasses import replace

        book.offerings[offer.id] = replace(offer, price_minor=price)
    return web.json_response({"ok": True})


async def admin_reset(request: web.Request) -> web.Response:
    request.app[ORDERS].reset()
    return web.json_response({"ok": True})


def install_orders(app: web.Application, monotonic: Any = time.monotonic) -> None:
    """Mount the catalog, inventory and ordering endpoints on the simulator app."""
    app[ORDERS] = SimOrders(monotonic=monotonic)
    app.router.add_get(INVENTORY_PATH, get_inventory)
    app.router.add_get(OFFERING_PATH, get_offerings)
    app.router.add_post(ORDER_PATH, post_order)
    app.router.add_get(ORDER_PATH, get_orders)
    app.router.add_post(PASSWORD_PATH, verify_password)
    app.router.add_route("POST", "/_sim/order-faults", admin_faults)
    app.router.add_route("DELETE", "/_sim/order-faults", admin_faults)
    app.router.add_get("/_sim/orders", admin_orders)
    app.router.add_put("/_sim/offerings/{id}", admin_offering)
    app.router.add_post("/_sim/orders/reset", admin_reset)
