"""TMF622 / TMF637 / TMF620 wire forms: the paths, and strict parsing of the answers.

Every answer is validated before anything is believed: an order without its
`externalId`, a price that is not a whole number of fen, a state TMF622 does not name
is an `InvalidUpstreamAnswer` — for an order, an *ambiguous* answer the desk then
reconciles by polling, never a failure told to the subscriber.

    GET  /tmf-api/productInventory/v4/product?relatedParty.id=<msisdn>        TMF637
    GET  /tmf-api/productCatalogManagement/v4/productOffering?relatedParty.id= TMF620
    POST /tmf-api/productOrderingManagement/v4/productOrder                    TMF622
    GET  /tmf-api/productOrderingManagement/v4/productOrder?externalId=<id>    TMF622
    POST /v1/service-password/verify {"msisdn", "password"} → {"valid": bool}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, cast

from hotline.base.errors import InvalidUpstreamAnswer
from hotline.plans.model import (
    ORDER_STATES,
    REASONS,
    Allowance,
    CurrentPlan,
    Offer,
    OrderOutcome,
    OrderReason,
    OrderRequest,
    OrderState,
)

__all__ = [
    "INVENTORY_PATH",
    "OFFERING_PATH",
    "ORDER_PATH",
    "PASSWORD_PATH",
    "order_body",
    "parse_catalog",
    "parse_inventory",
    "parse_order",
    "parse_orders",
]

INVENTORY_PATH = "/tmf-api/productInventory/v4/product"
OFFERING_PATH = "/tmf-api/productCatalogManagement/v4/productOffering"
ORDER_PATH = "/tmf-api/productOrderingManagement/v4/productOrder"
PASSWORD_PATH = "/v1/service-password/verify"
_CHARS = {"dataBytes": "data_bytes", "voiceSeconds": "voice_seconds", "sms": "sms"}


def _bad(path: str, problem: str) -> NoReturn:
    raise InvalidUpstreamAnswer(f"{path}: {problem}")


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _bad(path, "expected an object")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list):
        _bad(path, "expected an array")
    return value


def _str(value: Any, path: str, max_len: int = 128) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        _bad(path, "expected a non-empty string")
    return value


def _minor(value: Any, path: str) -> int:
    """A price `{"unit": "CNY", "value": 38.0}` in fen, exactly (never through a float)."""
    price = _obj(value, path)
    raw = price.get("value")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        _bad(f"{path}.value", "expected a number")
    try:
        amount = Decimal(str(raw)) * 100
    except InvalidOperation:
        _bad(f"{path}.value", "expected a number")
    if amount != amount.to_integral_value() or amount < 0 or amount > 10**9:
        _bad(f"{path}.value", "not a whole number of fen in range")
    return int(amount)


def _allowance(chars: Any, path: str) -> Allowance:
    found: dict[str, int] = {}
    for i, char in enumerate(_list(chars or [], path)):
        item = _obj(char, f"{path}[{i}]")
        name = item.get("name")
        if name in _CHARS:
            value = item.get("value")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                _bad(f"{path}[{i}].value", "expected a non-negative integer")
            found[_CHARS[name]] = value
    return Allowance(**found)


def _char(chars: Any, name: str) -> Any:
    for char in chars or []:
        if isinstance(char, Mapping) and char.get("name") == name:
            return char.get("value")
    return None


def _price(prices: Any, path: str) -> tuple[int, str]:
    items = _list(prices, path)
    if not items:
        _bad(path, "no price")
    first = _obj(items[0], f"{path}[0]")
    price = _obj(first.get("price"), f"{path}[0].price")
    unit = _str(price.get("unit"), f"{path}[0].price.unit", 3)
    return _minor(price, f"{path}[0].price"), unit


def parse_inventory(doc: Any) -> CurrentPlan:
    """TMF637 `Product[]` of one subscriber → the current plan (the active `plan` product)."""
    items = _list(doc, "$")
    plan: Mapping[str, Any] | None = None
    pending: str | None = None
    addons: list[str] = []
    status = "active"
    for i, raw in enumerate(items):
        item = _obj(raw, f"$[{i}]")
        kind = _char(item.get("productCharacteristic"), "kind")
        state = _str(item.get("status"), f"$[{i}].status", 32)
        if state in ("suspended", "aborted"):
            status = "suspended"
        if kind == "plan" and state in ("active", "suspended"):
            plan = item
        elif kind == "plan" and state == "pendingActive":
            pending = _str(item.get("name"), f"$[{i}].name", 64)
        elif kind == "addon" and state == "active":
            addons.append(_str(item.get("name"), f"$[{i}].name", 64))
    if plan is None:
        _bad("$", "no active plan product")
    fee, currency = _price(plan.get("productPrice"), "$.plan.productPrice")
    renews: dt.date | None = None
    if plan.get("renewalDate") is not None:
        try:
            renews = dt.date.fromisoformat(_str(plan.get("renewalDate"), "$.renewalDate", 10))
        except ValueError:
            _bad("$.renewalDate", "expected YYYY-MM-DD")
    return CurrentPlan(
        name=_str(plan.get("name"), "$.plan.name", 64),
        monthly_fee_minor=fee,
        currency=currency,
        allowance=_allowance(plan.get("productCharacteristic"), "$.plan.productCharacteristic"),
        renews_on=renews,
        addons=tuple(addons),
        pending=pending,
        status=status,
    )


def parse_catalog(doc: Any) -> list[Offer]:
    """TMF620 `ProductOffering[]` → the offers (only `Active` ones)."""
    found: list[Offer] = []
    for i, raw in enumerate(_list(doc, "$")):
        item = _obj(raw, f"$[{i}]")
        if item.get("lifecycleStatus") != "Active":
            continue
        chars = item.get("prodSpecCharValueUse")
        kind = _char(chars, "kind")
        effect = _char(chars, "effect")
        if kind not in ("plan", "addon") or effect not in ("now", "next_month"):
            _bad(f"$[{i}]", "kind/effect missing or unknown")
        price, currency = _price(item.get("productOfferingPrice"), f"$[{i}].productOfferingPrice")
        code = _char(chars, "code")
        found.append(
            Offer(
                id=_str(item.get("id"), f"$[{i}].id", 64),
                code=_str(code, f"$[{i}].code", 16),
                name=_str(item.get("name"), f"$[{i}].name", 64),
                kind=kind,
                price_minor=price,
                currency=currency,
                effect=effect,
                allowance=_allowance(chars, f"$[{i}].prodSpecCharValueUse"),
                change=str(item.get("description") or "")[:64],
                requires_password=_char(chars, "requiresPassword") is True,
            )
        )
    return found


def order_body(request: OrderRequest) -> dict[str, Any]:
    """The TMF622 `ProductOrder_Create` for one offer."""
    offer = request.offer
    return {
        "externalId": request.order_id,
        "relatedParty": [{"id": request.msisdn, "role": "customer", "@referredType": "Individual"}],
        "productOrderItem": [
            {
                "id": "1",
                "action": "modify" if offer.kind == "plan" else "add",
                "productOffering": {"id": offer.id, "name": offer.name},
                "itemPrice": [
                    {
                        "priceType": "recurring" if offer.effect == "next_month" else "oneTime",
                        "price": {
                            "taxIncludedAmount": {
                                "unit": offer.currency,
                                "value": float(Decimal(offer.price_minor) / 100),
                            }
                        },
                    }
                ],
            }
        ],
        "@type": "ProductOrder",
    }


def parse_order(doc: Any, order_id: str, path: str = "$") -> OrderOutcome:
    """One `ProductOrder`; it must be the order placed under `order_id`."""
    item = _obj(doc, path)
    if item.get("externalId") != order_id:
        _bad(f"{path}.externalId", "not the order placed")
    state = item.get("state")
    if state not in ORDER_STATES:
        _bad(f"{path}.state", "not a TMF622 order state")
    reason: OrderReason | None = None
    errors = item.get("errorMessage")
    if state in ("rejected", "failed") and isinstance(errors, list) and errors:
        code = _obj(errors[0], f"{path}.errorMessage[0]").get("code")
        reason = cast(OrderReason, code) if code in REASONS else "unavailable"
    elif state in ("rejected", "failed"):
        reason = "unavailable"
    effective: dt.date | None = None
    if isinstance(item.get("requestedStartDate"), str):
        try:
            effective = dt.date.fromisoformat(item["requestedStartDate"][:10])
        except ValueError:
            _bad(f"{path}.requestedStartDate", "expected a date")
    charged = item.get("chargedAmount")
    return OrderOutcome(
        order_id=order_id,
        state=cast(OrderState, state),
        reason=reason,
        upstream_id=_str(item.get("id"), f"{path}.id", 64),
        effective_on=effective,
        charged_minor=_minor(charged, f"{path}.chargedAmount") if charged is not None else 0,
    )


def parse_orders(doc: Any, order_id: str) -> OrderOutcome | None:
    """A `ProductOrder[]` search by `externalId`: the one order, or None."""
    items = _list(doc, "$")
    if not items:
        return None
    if len(items) > 1:
        _bad("$", "more than one order under one externalId")
    return parse_order(items[0], order_id, "$[0]")
