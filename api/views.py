"""A balance snapshot as the API's bodies, worded and formatted as USSD words it.

The figures come from `hotline.flow.actions.balance_lookup.snapshot_variables` — the
very function the `balance.lookup` action fills a USSD screen from — and are written
by the same formatter (`hotline.i18n.TextFormatter`) and catalog sentences
(`result.*`), so the app, the portal and `*100#` show one number the same way. The
bodies are plain dicts of the models' fields (`api.models`, `…Json`), encoded once by
the pipeline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Literal
from zoneinfo import ZoneInfo

from api.models import (
    AllowanceJson,
    AllowancesJson,
    AmountJson,
    BalanceJson,
    FreshJson,
    PlanBucketJson,
    PlanJson,
    QuantityJson,
)
from hotline.balance.model import BalanceSnapshot
from hotline.balance.model import Quantity as SnapshotQuantity
from hotline.base.values import Clock, Date, Duration, Money, Value, Volume
from hotline.flow.actions.balance_lookup import is_stale, snapshot_variables
from hotline.flow.screen import PromptPart
from hotline.i18n import TextFormatter
from hotline.i18n.catalog import Catalog, Sentence

__all__ = ["Freshness", "allowances_body", "balance_body", "plan_body"]

_FORMAT = TextFormatter()
_UNITS: dict[str, Literal["byte", "second", "message"]] = {
    "data": "byte",
    "voice": "second",
    "sms": "message",
}


class Freshness:
    """`as_of`, `stale` and the 'as of' note for one snapshot, as USSD decides them.

    `values` — every figure as `balance.lookup` sets it, each bucket summed and its
    expiry found — is worked out on first use: `/me/allowances` needs it, `/me/balance`
    and `/me/plan` do not (`balance_body` words the main balance from the snapshot).
    """

    __slots__ = ("_snapshot", "_values", "_zone", "as_of", "stale")

    def __init__(
        self, snapshot: BalanceSnapshot, now: dt.datetime, fresh_for: float, zone: ZoneInfo
    ) -> None:
        self.stale = is_stale(snapshot, now, fresh_for)
        self.as_of = min(snapshot.as_of, snapshot.fetched_at)
        self._snapshot = snapshot
        self._zone = zone
        self._values: dict[str, Value | bool] | None = None

    @property
    def values(self) -> dict[str, Value | bool]:
        if self._values is None:
            self._values = snapshot_variables(self._snapshot, self._zone, stale=self.stale)
        return self._values

    def fields(self, catalog: Catalog) -> FreshJson:
        note = None
        if self.stale:  # the very `as_of` value `snapshot_variables` sets when stale
            moment = Clock(self.as_of.astimezone(self._zone))
            note = catalog.render(PromptPart("result.as_of", {"as_of": moment}), _FORMAT)
        return {
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "stale": self.stale,
            "as_of_display": note,
            "language": catalog.language,
        }


def _amount(money: Money, language: str) -> AmountJson:
    return {
        "minor": money.minor,
        "currency": money.currency,
        "exponent": money.exponent,
        "display": _FORMAT.format(money, language),
    }


def _say(catalog: Catalog, key: str, values: Mapping[str, Value | bool]) -> str:
    typed = {name: value for name, value in values.items() if not isinstance(value, bool)}
    return catalog.render(PromptPart(key, typed), _FORMAT)


def _word(sentence: Sentence, name: str, shown: str) -> str | None:
    """`sentence` with its placeholders `name` as `shown` (as `Sentence.render` would give
    them); None when it names another value."""
    out: list[str] = []
    for piece in sentence.pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif piece[0] == name:
            out.append(shown)
        else:
            return None
    return "".join(out)


def balance_body(snapshot: BalanceSnapshot, fresh: Freshness, catalog: Catalog) -> BalanceJson:
    language = catalog.language
    money = snapshot.main_balance
    amount: AmountJson | None
    # The sentence's one value as `snapshot_variables` sets it for the main balance.
    name = shown = ""
    if money is None:
        status, amount, key = "unknown", None, "result.balance_unknown"
    else:
        amount = _amount(money, language)
        if money.minor >= 0:
            status, key, name, shown = "ok", "result.balance", "balance", amount["display"]
        else:
            owed = Money(-money.minor, money.currency, money.exponent)
            status, key, name = "owed", "result.owed", "owed"
            shown = _FORMAT.format(owed, language)
    sentence = catalog.sentences.get(key)
    if sentence is None:  # a catalog without it: the catalog's own error, as before
        text = catalog.render(PromptPart(key), _FORMAT)
    else:  # an operator's sentence naming more figures gets them all
        text = _word(sentence, name, shown) or _say(catalog, key, fresh.values)
    return {
        **fresh.fields(catalog),
        "status": status,  # type: ignore[typeddict-item]
        "balance": amount,
        "text": text,
        "account_status": snapshot.account_status,
    }


_Kind = Literal["data", "voice", "sms"]


def _allowance(kind: _Kind, values: Mapping[str, Value | bool], catalog: Catalog) -> AllowanceJson:
    language = catalog.language
    if values.get(f"{kind}_unknown") is True:
        return {
            "kind": kind,
            "status": "unknown",
            "remaining": None,
            "expires": None,
            "expires_display": None,
            "text": _say(catalog, f"result.{kind}_unknown", values),
        }
    figure = values.get(kind)
    if figure is None or isinstance(figure, bool):
        return {
            "kind": kind,
            "status": "none",
            "remaining": None,
            "expires": None,
            "expires_display": None,
            "text": _say(catalog, f"result.no_{kind}", values),
        }
    if isinstance(figure, Volume):
        amount = figure.bytes
    elif isinstance(figure, Duration):
        amount = figure.seconds
    else:
        amount = int(getattr(figure, "value", 0))
    expiry = values.get(f"{kind}_expiry")
    until = expiry if isinstance(expiry, Date) else None
    return {
        "kind": kind,
        "status": "active",
        "remaining": {
            "value": amount,
            "unit": _UNITS[kind],
            "display": _FORMAT.format(figure, language),
        },
        "expires": until.value.isoformat() if until is not None else None,
        "expires_display": _FORMAT.format(until, language) if until is not None else None,
        "text": _say(catalog, f"result.{kind}_until" if until else f"result.{kind}", values),
    }


def allowances_body(fresh: Freshness, catalog: Catalog) -> AllowancesJson:
    kinds: tuple[_Kind, ...] = ("data", "voice", "sms")
    return {
        **fresh.fields(catalog),
        "allowances": [_allowance(kind, fresh.values, catalog) for kind in kinds],
    }


def _figure(
    value: Money | SnapshotQuantity | None, language: str
) -> AmountJson | QuantityJson | None:
    if value is None:
        return None
    if isinstance(value, Money):
        return _amount(value, language)
    shown: Value
    if value.unit == "byte":
        shown = Volume(value.value)
        display = _FORMAT.format(shown, language)
    elif value.unit == "second":
        display = _FORMAT.format(Duration(value.value), language)
    else:
        display = str(value.value)
    unit = value.unit if value.unit != "unit" else "message"
    return {"value": value.value, "unit": unit, "display": display}  # type: ignore[typeddict-item]


def plan_body(snapshot: BalanceSnapshot, fresh: Freshness, catalog: Catalog) -> PlanJson:
    language = catalog.language
    buckets: list[PlanBucketJson] = [
        {
            "id": bucket.id,
            "name": bucket.name,
            "kind": bucket.usage_type,  # type: ignore[typeddict-item]
            "status": bucket.status,
            "remaining": _figure(bucket.remaining, language),
            "total": _figure(bucket.total, language),
            "valid_until": bucket.valid_until.isoformat() if bucket.valid_until else None,
        }
        for bucket in snapshot.buckets
    ]
    return {
        **fresh.fields(catalog),
        "account_status": snapshot.account_status,
        "payment_type": snapshot.payment_type,
        "credit_limit": _amount(snapshot.credit_limit, language) if snapshot.credit_limit else None,
        "buckets": buckets,
    }
