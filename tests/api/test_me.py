"""`/me/*`: the figures USSD shows, from the same provider, cache and freshness bound,
in the language asked for."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import get_type_hints
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from api.models import (
    Allowance,
    AllowanceJson,
    AllowancesBody,
    AllowancesJson,
    Amount,
    AmountJson,
    BalanceBody,
    BalanceJson,
    PlanBody,
    PlanBucket,
    PlanBucketJson,
    PlanJson,
    Quantity,
    QuantityJson,
)
from api.views import Freshness, allowances_body, balance_body
from hotline.balance.ledger import LedgerRecord, LedgerStore
from hotline.balance.model import BalanceSnapshot, Bucket
from hotline.balance.model import Quantity as SnapshotQuantity
from hotline.base.values import Money, Value
from hotline.flow.actions.balance_lookup import snapshot_variables
from hotline.flow.screen import PromptPart
from hotline.i18n import TextFormatter
from hotline.i18n.catalog import _parse_sentence, load_catalogs
from tests.api.conftest import PHONE, ROOT, Api


async def _ussd(api: Api, code: str, text: str = "", session: str = "s1") -> str:
    r = await api.client.post(
        "/ussd/africastalking",
        data={"sessionId": session, "serviceCode": code, "phoneNumber": PHONE, "text": text},
    )
    assert r.status == 200
    return await r.text()


_MODELS: dict[str, type[BaseModel]] = {
    "balance": BalanceBody,
    "allowances": AllowancesBody,
    "plan": PlanBody,
}


async def _me(api: Api, path: str, token: str, language: str = "zh-CN") -> dict[str, object]:
    r = await api.client.get(
        f"/api/v1/me/{path}",
        headers={"Authorization": f"Bearer {token}", "Accept-Language": language},
    )
    assert r.status == 200, await r.text()
    body: dict[str, object] = await r.json()
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Type"] == "application/json"
    # Every field of the model, no other (its fields forbid nothing extra by themselves).
    _MODELS[path].model_validate(body)
    assert set(body) == set(_MODELS[path].model_fields)
    return body


async def test_api_and_ussd_show_the_same_snapshot(api: Api) -> None:
    token = await api.sign_in(await api.client_token(api.register("app", "balance:read")))
    first = await _me(api, "balance", token)
    assert first["text"] == "您的话费余额为12.50元。" and first["stale"] is False
    # The ledger changes; within the freshness bound both channels keep showing the one
    # cached snapshot the API's request put there.
    ledger = LedgerStore(api.settings.balance.ledger_path)
    ledger.put(LedgerRecord(msisdn="13800138000", status="active", main_minor=99_900))
    ledger.close()
    screen = await _ussd(api, "*100*1#")
    assert screen == f"END {first['text']}"
    again = await _me(api, "balance", token)
    assert again["balance"] == first["balance"] and again["as_of"] == first["as_of"]


async def test_balance_allowances_plan_in_both_languages(api: Api) -> None:
    token = await api.sign_in(
        await api.client_token(api.register("app", "balance:read,allowances:read,plan:read"))
    )
    zh = await _me(api, "allowances", token, "zh-CN,zh;q=0.9,en;q=0.5")
    en = await _me(api, "allowances", token, "en-GB,en;q=0.9")
    assert zh["language"] == "zh-CN" and en["language"] == "en"
    by_kind = {a["kind"]: a for a in zh["allowances"]}  # type: ignore[attr-defined, index]
    data = by_kind["data"]
    assert data["status"] == "active"
    assert data["remaining"] == {"value": 3 * 1024**3, "unit": "byte", "display": "3.00GB"}
    assert data["text"].startswith("剩余流量3.00GB，有效期至")
    assert by_kind["voice"]["remaining"]["display"] == "200分钟"
    assert by_kind["sms"]["remaining"] == {"value": 100, "unit": "message", "display": "100"}
    en_voice = next(a for a in en["allowances"] if a["kind"] == "voice")  # type: ignore[attr-defined]
    assert en_voice["remaining"]["display"] == "200 min"
    # USSD's data screen (main menu → 2) shows the API's sentence
    await _ussd(api, "*100#", "", session="d1")
    screen = await _ussd(api, "*100#", "2", session="d1")
    assert data["text"] in screen
    plan = await _me(api, "plan", token, "en")
    assert plan["payment_type"] == "prepaid" and plan["account_status"] == "active"
    kinds = sorted(b["kind"] for b in plan["buckets"])  # type: ignore[attr-defined]
    assert kinds == ["data", "sms", "voice"]
    unknown_language = await _me(api, "balance", token, "fr-FR")
    assert unknown_language["language"] == "zh-CN"  # the default


def test_stale_snapshot_says_as_of_like_ussd() -> None:
    """A snapshot older than the freshness bound: stale, with USSD's 'as of' note."""
    catalogs = load_catalogs(ROOT / "prompts", ("zh-CN", "en"), "zh-CN")
    fetched = dt.datetime(2026, 12, 6, 4, 30, tzinfo=dt.UTC)
    snap = BalanceSnapshot(
        subscriber_token="x",
        account_status="active",
        main_balance=Money(1250),
        as_of=fetched,
        fetched_at=fetched,
        provider="ledger",
    )
    now = fetched + dt.timedelta(minutes=5)
    fresh = Freshness(snap, now, 5.0, ZoneInfo("Asia/Shanghai"))
    body = BalanceBody.model_validate(balance_body(snap, fresh, catalogs["zh-CN"]))
    assert body.stale is True and body.as_of == "2026-12-06T04:30:00Z"
    assert body.as_of_display == "（截至12:30的数据）"
    current = Freshness(snap, fetched + dt.timedelta(seconds=3), 5.0, ZoneInfo("Asia/Shanghai"))
    assert balance_body(snap, current, catalogs["en"])["stale"] is False


def _snapshot(main: Money | None, fetched: dt.datetime) -> BalanceSnapshot:
    data = Bucket(
        id="d1",
        usage_type="data",
        remaining=SnapshotQuantity(value=3 * 2**30, unit="byte"),
        valid_until=dt.datetime(2026, 12, 31, 15, 59, tzinfo=dt.UTC),
    )
    return BalanceSnapshot(
        subscriber_token="x",
        account_status="active",
        main_balance=main,
        buckets=(data,),
        as_of=fetched,
        fetched_at=fetched,
        provider="ledger",
    )


@pytest.mark.parametrize("main", [Money(1250), Money(-320), None])
@pytest.mark.parametrize("age", [3, 300])
def test_balance_text_is_the_sentence_ussd_words(main: Money | None, age: int) -> None:
    """`/me/balance` words the main balance from the snapshot alone; the sentence and the
    'as of' note are the ones `balance.lookup`'s variables give, fresh or stale, in either
    language (the allowances' figures are worked out only for `/me/allowances`)."""
    catalogs = load_catalogs(ROOT / "prompts", ("zh-CN", "en"), "zh-CN")
    zone = ZoneInfo("Asia/Shanghai")
    fetched = dt.datetime(2026, 12, 6, 4, 30, tzinfo=dt.UTC)
    snap = _snapshot(main, fetched)
    now = fetched + dt.timedelta(seconds=age)
    values = snapshot_variables(snap, zone, stale=age > 5)
    typed: dict[str, Value] = {k: v for k, v in values.items() if not isinstance(v, bool)}
    key = (
        "result.balance_unknown"
        if main is None
        else ("result.balance" if main.minor >= 0 else "result.owed")
    )
    for language in ("zh-CN", "en"):
        catalog = catalogs[language]
        fresh = Freshness(snap, now, 5.0, zone)
        body = balance_body(snap, fresh, catalog)
        assert body["text"] == catalog.render(PromptPart(key, typed), TextFormatter())
        assert body["stale"] is (age > 5)
        note = values.get("as_of")
        assert body["as_of_display"] == (
            catalog.render(PromptPart("result.as_of", {"as_of": note}), TextFormatter())
            if isinstance(note, Value)
            else None
        )
        # The same Freshness then serves the allowances, whose figures it works out now.
        allowances = allowances_body(fresh, catalog)["allowances"]
        assert allowances[0]["remaining"]["value"] == 3 * 2**30  # type: ignore[index]


def test_an_operators_balance_sentence_may_name_other_figures() -> None:
    """A catalog whose balance sentence also names the data left still gets it."""
    catalogs = load_catalogs(ROOT / "prompts", ("zh-CN", "en"), "zh-CN")
    catalog = catalogs["zh-CN"]
    sentence = _parse_sentence("余额{balance:money}，流量{data:volume}。", "x.yaml", 1, "k")
    custom = dataclasses.replace(
        catalog, sentences={**catalog.sentences, "result.balance": sentence}
    )
    fetched = dt.datetime(2026, 12, 6, 4, 30, tzinfo=dt.UTC)
    snap = _snapshot(Money(1250), fetched)
    fresh = Freshness(snap, fetched, 5.0, ZoneInfo("Asia/Shanghai"))
    assert balance_body(snap, fresh, custom)["text"] == "余额12.50元，流量3.00GB。"


@pytest.mark.parametrize(
    ("built", "model"),
    [
        (AmountJson, Amount),
        (QuantityJson, Quantity),
        (BalanceJson, BalanceBody),
        (AllowanceJson, Allowance),
        (AllowancesJson, AllowancesBody),
        (PlanBucketJson, PlanBucket),
        (PlanJson, PlanBody),
    ],
)
def test_built_answers_have_exactly_the_models_fields(built: type, model: type[BaseModel]) -> None:
    """The `/me/*` handlers build plain dicts: each type names the model's fields, no more
    and no fewer (the model is what the OpenAPI document promises)."""
    assert set(get_type_hints(built)) == set(model.model_fields)


async def test_owed_and_suspended(api: Api, tmp_path: Path) -> None:
    client_token = await api.client_token(api.register("app", "balance:read"))
    owed = await api.sign_in(client_token, "+8613800138002")
    body = await _me(api, "balance", owed, "en")
    assert body["status"] == "owed" and body["balance"]["minor"] == -320  # type: ignore[index]
    assert body["text"] == "You owe CNY 3.20. Please top up."
    suspended = await api.sign_in(client_token, "+8613800138003")
    body = await _me(api, "balance", suspended, "en")
    assert body["account_status"] == "suspended"
