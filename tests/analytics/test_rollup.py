"""Pure parts: what an end state means, a session summarized from facts in any order,
quantiles, facts that are not ours, the survey action's answers."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline.analytics.facts import Fact, capture, end_outcomes, make_fact
from hotline.analytics.report import quantile
from hotline.analytics.rollup import increments, summarize
from hotline.flow.actions import ACTIONS, ActionContext, Services
from hotline.flow.events import ChannelEvent
from hotline.flow.load import load_flow
from hotline.flow.screen import Screen, Turn

ROOT = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")


def test_what_each_shipped_end_state_means() -> None:
    balance = end_outcomes(load_flow(ROOT / "flows" / "balance.yaml"))
    assert balance == {
        "transferring": "result",  # the transfer itself is told by call.transfer's event
        "show_balance": "result",
        "show_data": "result",
        "show_voice_sms": "result",
        "show_summary": "result",
        "goodbye": "exit",  # after_result: false
        "unknown_number": "error",
        "account_suspended": "error",
        "rate_limited": "error",
        "system_busy": "error",
        "reminder_done": "result",
        "reminder_stopped": "result",
        "reminder_none": "result",  # outcome: result — told they have none
        "reminder_invalid": "error",
        "reminder_unavailable": "error",
        "reminder_done_data": "result",  # the bundle reminders (issue 18)
        "reminder_done_voice": "result",
        "reminder_done_expiry": "result",
        "reminder_invalid_percent": "error",
        "reminder_invalid_days": "error",
        "plan_done": "result",
        "plan_refused": "result",  # told why not (balance, eligibility): an answer
        "plan_not_done": "result",
        "plan_locked": "error",
        "plan_cancelled": "exit",  # outcome: exit — they chose not to order
        "plan_busy": "error",
    }
    data = end_outcomes(load_flow(ROOT / "flows" / "data.yaml"))
    assert data["survey_thanks"] == "result" and data["system_busy"] == "error"


def _fact(ts: float, state: str, **kw: object) -> Fact:
    base: dict[str, object] = {
        "ts": ts,
        "kind": "i",
        "state": state,
        "flow": "balance",
        "version": "v1",
        "channel": "ussd",
        "subscriber": "p1",
        "started": False,
        "outcome": "",
        "ends": False,
    }
    base.update(kw)
    return Fact(**base)  # type: ignore[arg-type]


def test_a_session_is_the_same_whatever_order_its_turns_arrived_in() -> None:
    t0 = dt.datetime(2026, 12, 6, 23, 59, 58, tzinfo=ZONE).timestamp()
    facts = [
        _fact(t0, "main", kind="s", started=True),
        _fact(t0 + 1, "main", invalid=["main"]),
        _fact(t0 + 3, "language"),
        _fact(t0 + 7, "show_balance", outcome="result", ends=True, lookups=["ok"]),
    ]
    expected = summarize(facts, ZONE)
    assert expected is not None
    assert expected.group.day == "2026-12-06"  # the day it started, local time
    assert (expected.outcome, expected.steps, expected.seconds) == ("result", 4, 7)
    assert expected.visits == {"main": 1, "language": 1, "show_balance": 1}
    assert expected.inputs == {"main": 2, "language": 1} and expected.invalid == {"main": 1}
    assert expected.left_at == ""
    for _ in range(5):
        shuffled = facts[:]
        random.shuffle(shuffled)
        assert summarize(shuffled, ZONE) == expected
    fields = increments(expected)
    assert fields["ussd|balance|v1|result"] == 1 and fields["ussd|balance|v1|steps:4"] == 1
    assert "ussd|balance|v1|drop:main" not in fields


def test_abandoned_and_exited_sessions_drop_off_where_they_were() -> None:
    left = summarize([_fact(1, "main", kind="s", started=True), _fact(2, "language")], ZONE)
    assert left is not None and left.outcome == "" and left.left_at == "language"
    assert increments(left)["ussd|balance|v1|abandoned"] == 1
    exited = summarize(
        [_fact(1, "main", kind="s", started=True), _fact(2, "goodbye", outcome="exit")], ZONE
    )
    assert exited is not None and exited.left_at == "main"
    assert summarize([_fact(5, "main")], ZONE) is None  # its start was never seen


@pytest.mark.parametrize(
    ("counts", "q", "expected"),
    [
        ({}, 0.5, None),
        ({2: 10}, 0.5, 2.0),
        ({2: 10}, 0.95, 2.0),
        ({1: 1, 2: 1, 3: 1, 4: 1}, 0.5, 2.0),
        ({1: 19, 9: 1}, 0.95, 1.0),
        ({1: 18, 9: 2}, 0.95, 9.0),
    ],
)
def test_quantile_is_nearest_rank(
    counts: dict[int, float], q: float, expected: float | None
) -> None:
    assert quantile(counts, q) == expected


@pytest.mark.parametrize("raw", [[], [1, 2], "x", [0] * 14, [*["s"] * 13, "1"]])
def test_a_fact_that_is_not_ours_is_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        Fact.load(raw)  # type: ignore[arg-type]


def test_repeated_and_refused_requests_are_no_turns() -> None:
    event = ChannelEvent("ussd", "africastalking", "s1", "+8613800138000", "input", "1")
    screen = Screen("main", "zh-CN", ())
    for events in (("repeated",), ("refused",)):
        captured = capture(1.0, event, Turn(screen, events), False)
        assert make_fact(captured, lambda s: "p", lambda f, v: {}) is None
    apology = capture(1.0, event, Turn(screen, ("apology",)), True)
    fact = make_fact(apology, lambda s: "p", lambda f, v: {})
    assert fact is not None and fact.outcome == "error" and fact.subscriber == "p"


@pytest.mark.parametrize(
    ("answer", "outcome", "kept"),
    [
        ("4", "ok", 4),
        ("1", "ok", 1),
        ("5", "ok", 5),
        ("0", "invalid", None),
        ("6", "invalid", None),
        ("x", "invalid", None),
        ("٣", "invalid", None),
        ("", "invalid", None),
    ],
)
async def test_survey_score_keeps_one_to_scale(answer: str, outcome: str, kept: int | None) -> None:
    action = ACTIONS.get("survey.score")
    assert action is not None
    variables: dict[str, object] = {"answer": answer}
    ctx = ActionContext(
        subscriber="+8613800138000",
        language="zh-CN",
        languages=("zh-CN",),
        args={"var": "answer", "scale": 5},
        variables=variables,
        services=Services(),
        timezone=ZONE,
        now=lambda: dt.datetime.now(dt.UTC),
    )
    assert await action(ctx) == outcome
    assert variables.get("survey_score") == kept
    if kept is not None:
        assert "answer" not in variables  # kept once, as a number


def test_report_cli_refuses_bad_input_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotline.cli import main

    monkeypatch.delenv("HOTLINE_REDIS_URL", raising=False)
    monkeypatch.chdir(ROOT / "docs")  # no hotline.yaml here
    assert main(["report"]) == 2
    assert capsys.readouterr().err == "hotline report: analytics live in Redis; set redis_url\n"
    monkeypatch.setenv("HOTLINE_REDIS_URL", "redis://user:secret@127.0.0.1:1/0")
    assert main(["report", "--since", "yesterday"]) == 2
    assert "expected like 7d or 2026-12-01" in capsys.readouterr().err
    assert main(["report", "--since", "1d", "--until", "2000-01-01"]) == 2
    assert "on or after --since" in capsys.readouterr().err
    assert main(["report", "--since", "1d"]) == 1  # nothing listens there
    err = capsys.readouterr().err
    assert err == "hotline report: cannot read Redis (ConnectionError)\n" and "secret" not in err
