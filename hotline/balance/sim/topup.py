"""The simulator's recharge cards: `POST /v1/topup` credits the balance it serves.

The contract (HMAC-signed like "balance-query v1", `hotline.balance.signing`):

    POST /v1/topup   {"msisdn": "+8613800138000", "card": "1234567812345678"}
    200 {"status": "ok", "credited": {"amount_minor": 5000, "currency": "CNY"},
         "balance": {"amount_minor": 6250, "currency": "CNY"}, "request_id": "…"}
    422 {"code": "INVALID_CARD"}   no such card
    409 {"code": "CARD_USED"}      the card was used before
    404 {"code": "SUBSCRIBER_NOT_FOUND"}

A used card stays used; the credit lands on the subscriber the balance dialects answer
for, so a top-up shows in the next balance lookup. Faults apply as to lookups (a `hang`
never credits; `wrong_types` and `missing_field` credit, then answer badly — the case a
caller must not report as a failure it is sure of).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEMO_CARDS", "TOPUP_PATH", "SimCard", "card_from_doc", "demo_cards", "parse_topup"]

TOPUP_PATH = "/v1/topup"
_CARD = re.compile(r"^[0-9]{16}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

#: Card number → (value in minor units, used): two fresh cards and one used one.
DEMO_CARDS: Mapping[str, tuple[int, bool]] = {
    "1234567812345678": (5000, False),
    "8888000011112222": (10000, False),
    "1111222233334444": (5000, True),
}


@dataclass(slots=True)
class SimCard:
    value_minor: int
    used: bool = False


def demo_cards() -> dict[str, SimCard]:
    return {number: SimCard(value, used) for number, (value, used) in DEMO_CARDS.items()}


def card_from_doc(doc: Any) -> SimCard:
    """`{"value_minor": 5000, "used": false}` (admin `PUT /_sim/cards/{card}`)."""
    if not isinstance(doc, Mapping) or set(doc) - {"value_minor", "used"}:
        raise ValueError("a card is {value_minor, used}")
    value, used = doc.get("value_minor"), doc.get("used", False)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("value_minor: a positive integer")
    if not isinstance(used, bool):
        raise ValueError("used: true or false")
    return SimCard(value, used)


def parse_topup(body: bytes) -> tuple[str, str] | None:
    """`(msisdn E.164, card)` of a request body, or None if malformed."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    msisdn, card = doc.get("msisdn"), doc.get("card")
    if not isinstance(msisdn, str) or not _E164.match(msisdn):
        return None
    if not isinstance(card, str) or not _CARD.match(card):
        return None
    return msisdn, card
