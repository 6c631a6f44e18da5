"""Actions: their specs (what `hotline actions` lists), freshness and sparse answers."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from hotline.balance.model import BalanceSnapshot, Bucket, Quantity
from hotline.base.values import Clock, Money, Volume
from hotline.flow.actions import ACTIONS, ActionContext, ActionRegistry, ArgSpec, Services
from hotline.flow.actions.balance_lookup import MIN_FRESHNESS, is_stale
from hotline.flow.load import load_flow
from hotline.flow.model import ActionState

ROOT = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)


def snapshot(**fields: object) -> BalanceSnapshot:
    values: dict[str, object] = {
        "subscriber_token": "t",
        "account_status": "active",
        "main_balance": Money(1250),
        "as_of": NOW,
        "fetched_at": NOW,
        "provider": "http",
    }
    values.update(fields)
    return BalanceSnapshot(**values)  # type: ignore[arg-type]


def data(status: str = "active", value: int = 1024**3) -> Bucket:
    return Bucket(
        id=f"d-{status}",
        usage_type="data",
        remaining=Quantity(value=value, unit="byte"),
        status=status,  # type: ignore[arg-type]
    )


class Fixed:
    """A balance service that always has the same answer."""

    def __init__(self, answer: BalanceSnapshot, fresh_for: float = 5.0) -> None:
        self.answer = answer
        self.fresh_for = fresh_for

    async def fetch(self, subscriber: str, /) -> BalanceSnapshot:
        return self.answer


def context(service: Fixed | None, now: dt.datetime = NOW) -> ActionContext:
    return ActionContext(
        subscriber="13800138000",
        language="zh-CN",
        languages=("zh-CN", "en"),
        args={},
        variables={},
        services=Services(balance=service),
        timezone=ZONE,
        now=lambda: now,
    )


async def lookup(ctx: ActionContext) -> str:
    action = ACTIONS.get("balance.lookup")
    assert action is not None
    return await action(ctx)


# ------------------------------------------------------------------------ specs


def test_specs_list_every_action_with_its_inputs_variables_and_outcomes() -> None:
    specs = {spec.name: spec for spec in ACTIONS.specs()}
    assert [spec.name for spec in ACTIONS.specs()] == sorted(specs) == ACTIONS.names()
    assert set(specs) == {
        "balance.lookup",
        "call.agent_available",
        "call.transfer",
        "http.request",
        "plan.current",
        "plan.offers",
        "plan.order",
        "plan.pick",
        "plan.quote",
        "reminder.status",
        "reminder.subscribe",
        "reminder.unsubscribe",
        "subscriber.set_language",
        "survey.score",
    }
    assert specs["survey.score"].all_outcomes == ("ok", "invalid", "error")
    assert dict(specs["survey.score"].sets) == {"survey_score": "int"}
    request = specs["http.request"]
    assert request.all_outcomes == ("ok", "timeout", "limited", "error")
    assert dict(request.sets_for({"receive": {"paid": "amount:money", "n": "x.y:int"}})) == {
        "paid": "money",
        "n": "int",
    }
    assert specs["call.transfer"].all_outcomes == ("ok", "unavailable", "error")
    assert dict(specs["call.agent_available"].sets) == {"agent": "flag"}
    lookup_spec = specs["balance.lookup"]
    assert lookup_spec.args == ()
    assert lookup_spec.sets["balance"] == "money"
    assert lookup_spec.sets["data"] == "volume"
    assert lookup_spec.sets["as_of"] == "time"
    assert lookup_spec.sets["balance_unknown"] == "flag"
    assert lookup_spec.all_outcomes == ("ok", "not_found", "suspended", "limited", "error")
    language = specs["subscriber.set_language"]
    assert language.args == (ArgSpec("language", "language", doc=language.args[0].doc),)
    assert dict(language.sets) == {} and language.outcomes == ()


@pytest.mark.parametrize("name", ACTIONS.names())
def test_each_doc_holds_a_yaml_example_of_its_own_action(name: str) -> None:
    doc = ACTIONS.doc(name)
    example = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert example, doc
    states = yaml.safe_load(example.group(1))
    assert [state["action"] for state in states.values()] == [name]


def test_the_shipped_flows_use_only_declared_outcomes_and_args() -> None:
    flow = load_flow(ROOT / "flows" / "balance.yaml")
    for state in flow.states.values():
        if not isinstance(state, ActionState):
            continue
        spec = ACTIONS.spec(state.action)
        assert spec is not None
        assert set(state.on) <= set(spec.outcomes), state
        assert set(state.args) <= {arg.name for arg in spec.args}, state


def test_a_name_registers_once() -> None:
    registry = ActionRegistry()

    async def nothing(ctx: ActionContext) -> str:
        """Does nothing."""
        return "ok"

    registry.action("x.y")(nothing)
    with pytest.raises(ValueError, match="registered twice"):
        registry.action("x.y")(nothing)
    spec = registry.spec("x.y")
    assert spec is not None and spec.doc == "Does nothing."


# -------------------------------------------------------------------- freshness


@pytest.mark.parametrize(
    ("as_of_age", "fetched_age", "fresh_for", "stale"),
    [
        (0, 0, 5.0, False),
        (4, 0, 5.0, False),
        (600, 0, 5.0, True),  # the upstream's own as_of is 10 minutes old
        (10, 10, 5.0, True),  # fetched 10 s ago (a cache kept it) and as old upstream
        (0.5, 0.5, 0.0, False),  # fresh_ttl 0 = no cache, not "nothing is current"
        (MIN_FRESHNESS + 0.5, 0, 0.0, True),
    ],
)
def test_data_is_stale_by_its_oldest_time(
    as_of_age: float, fetched_age: float, fresh_for: float, stale: bool
) -> None:
    snap = snapshot(
        as_of=NOW - dt.timedelta(seconds=as_of_age),
        fetched_at=NOW - dt.timedelta(seconds=fetched_age),
    )
    assert is_stale(snap, NOW, fresh_for) is stale


async def test_an_old_answer_gets_stale_and_its_time_from_the_injected_clock() -> None:
    as_of = NOW - dt.timedelta(minutes=10)
    ctx = context(Fixed(snapshot(as_of=as_of)))
    assert await lookup(ctx) == "ok"
    assert ctx.variables["stale"] is True
    assert ctx.values["as_of"] == Clock(as_of.astimezone(ZONE))
    fresh = context(Fixed(snapshot(as_of=as_of)), now=as_of + dt.timedelta(seconds=2))
    assert await lookup(fresh) == "ok"
    assert "stale" not in fresh.variables and "as_of" not in fresh.values


# ----------------------------------------------------------------- sparse shapes


async def test_every_figure_is_a_value_none_or_unknown() -> None:
    ctx = context(Fixed(snapshot(main_balance=None, buckets=(data(),))))
    assert await lookup(ctx) == "ok"
    assert ctx.variables["balance_unknown"] is True
    assert ctx.values["data"] == Volume(1024**3)
    assert ctx.variables["no_voice"] is True and ctx.variables["no_sms"] is True
    assert not {"balance", "owed", "stale", "data_unknown", "no_data"} & set(ctx.variables)


async def test_a_bucket_of_unknown_status_makes_its_figure_unknown_not_smaller() -> None:
    ctx = context(Fixed(snapshot(buckets=(data(), data("unknown", 5)))))
    assert await lookup(ctx) == "ok"
    assert ctx.variables["data_unknown"] is True
    assert "data" not in ctx.variables and "no_data" not in ctx.variables
    expired = context(Fixed(snapshot(buckets=(data("expired"),))))
    assert await lookup(expired) == "ok"
    assert expired.variables["no_data"] is True


async def test_a_second_lookup_leaves_nothing_of_the_first() -> None:
    ctx = context(Fixed(snapshot(as_of=NOW - dt.timedelta(minutes=10), buckets=(data(),))))
    assert await lookup(ctx) == "ok"
    assert ctx.variables["stale"] is True and "data" in ctx.variables
    service = Fixed(snapshot(main_balance=Money(-320)))
    ctx.services = Services(balance=service)
    assert await lookup(ctx) == "ok"
    assert ctx.values["owed"] == Money(320)
    assert not {"stale", "as_of", "balance", "data"} & set(ctx.variables)
    assert ctx.variables["no_data"] is True


async def test_without_a_balance_service_the_lookup_is_an_error() -> None:
    assert await lookup(context(None)) == "error"
