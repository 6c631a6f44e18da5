"""`hotline flows graph`: Mermaid and DOT of the shipped flow, SVG through Graphviz."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hotline.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _graph(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["flows", "graph", *args]) == 0
    return capsys.readouterr().out


def test_mermaid_has_states_by_kind_and_labelled_edges(capsys: pytest.CaptureFixture[str]) -> None:
    out = _graph(capsys)
    lines = out.splitlines()
    assert lines[1] == "flowchart TD"
    assert '  main["<b>main</b><br/>话费查询"]' in lines  # menu: a box
    assert '  lookup_balance[["<b>lookup_balance</b><br/>balance.lookup"]]' in lines  # action
    assert '  goodbye(["<b>goodbye</b><br/>感谢使用，再见。"])' in lines  # end: a stadium
    assert '  main -->|"1. 话费余额"| lookup_balance' in lines
    assert '  lookup_balance -->|"ok"| show_balance' in lines
    assert '  lookup_balance -.->|"not_found"| unknown_number' in lines
    assert '  lookup_balance -.->|"error"| system_busy' in lines
    assert "  class main start" in lines


def test_labels_in_english(capsys: pytest.CaptureFixture[str]) -> None:
    out = _graph(capsys, "balance", "--language", "en")
    assert '  main -->|"4. Package summary"| lookup_summary' in out.splitlines()
    assert 'show_balance(["<b>show_balance</b><br/>Your main balance is {balance}."])' in out


def test_committed_diagram_is_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    committed = (ROOT / "docs" / "flow-balance.mmd").read_text(encoding="utf-8")
    assert _graph(capsys) == committed, "run `hotline flows graph -o docs/flow-balance.mmd`"


def test_dot_has_every_state_and_edge(capsys: pytest.CaptureFixture[str]) -> None:
    out = _graph(capsys, "flows/balance.yaml", "--format", "dot")
    assert out.startswith("// flow balance") and out.rstrip().endswith("}")
    # options (agent too), lookups, language, set_*, voice_start, agent, entries
    # + plan change: plan, plan_menu, plan_offers(_next), plan_list, plan_pick, plan_confirm,
    # plan_gate, plan_password(_again), plan_order, plan_sms, plan_sms_quote, plan_result
    plan = 5 + 1 + 5 + 5 + 1 + 7 + 2 + 2 + 1 + 1 + 13 + 1 + 5 + 7
    # + reminders: option 8, status, its menu, five subscribe states, the SMS input,
    # unsubscribe, two SMS keyword entries
    reminders = 1 + 2 + 5 + 5 * 3 + 1 + 3 + 2
    # + bundle reminders: option 6, the bundle menu's three, three subscribe states, three
    # SMS inputs and their three subscribe states, `KTTX LL|YY|DQ`'s three outcomes
    bundles = 1 + 3 + 3 * 3 + 3 + 3 * 3 + 3
    assert out.count(" -> ") == 8 + 4 * 5 + 2 + 2 * 2 + 2 + 3 + 7 + plan + reminders + bundles
    assert '"lookup_data" -> "system_busy" [label="error", style=dashed' in out


def test_entries_point_at_the_state_they_start(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _graph(capsys).splitlines()
    assert '  Entry0>"USSD *100#35;"]' in lines  # a flag; `#` is an entity in Mermaid
    assert "  Entry0 --> main" in lines
    assert '  Entry1>"USSD *100*1#35;"]' in lines
    assert "  Entry1 --> lookup_balance" in lines  # direct dial
    assert '  Entry2>"call +8610086"]' in lines
    assert '  Entry3>"call any number"]' in lines
    assert '  Entry4>"SMS YE / CXYE / 余额 / balance / 102"]' in lines
    assert "  Entry4 --> lookup_balance" in lines
    assert "  class Entry0,Entry1,Entry2,Entry3,Entry4,Entry5,Entry6,Entry7,Entry8 entry" in lines
    assert "  Entry8 --> plan_sms" in lines
    dot = _graph(capsys, "data", "--format", "dot")
    assert '"Entry0" [shape=cds, style=filled, fillcolor="#fce4ec", label="USSD *101#"];' in dot
    assert '"Entry0" -> "lookup" [color="#ad1457"];' in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_through_graphviz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "flow.svg"
    assert main(["flows", "graph", "--format", "svg", "-o", str(target)]) == 0
    svg = target.read_text(encoding="utf-8")
    assert "<svg" in svg and "话费查询" in svg and "system_busy" in svg


def test_svg_without_graphviz_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "")
    assert main(["flows", "graph", "--format", "svg"]) == 1
    err = capsys.readouterr().err
    assert "--format svg needs Graphviz (`dot`)" in err


def test_unknown_flow_and_language(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "graph", "nosuchflow"]) == 1
    assert "flows/nosuchflow.yaml:1: cannot read" in capsys.readouterr().err
    assert main(["flows", "graph", "--language", "fr"]) == 2
    assert "unknown language 'fr'" in capsys.readouterr().err


def test_input_and_switch_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "topup.yaml"
    flow.write_text(
        "spec: 1\nid: topup\nstart: ask\nstates:\n"
        "  ask:\n    kind: input\n    prompt: main.title\n    var: amount\n"
        "    error: main.item\n    next: route\n"
        "  route:\n    kind: switch\n    cases:\n      - { var: amount, equals: 100, next: bye }\n"
        "    default: bye\n"
        "  bye:\n    kind: end\n    prompt: common.goodbye\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOTLINE_PROMPTS_DIR", str(ROOT / "tests" / "flows" / "broken" / "prompts"))
    lines = _graph(capsys, str(flow), "--language", "en").splitlines()
    assert '  ask[/"<b>ask</b><br/>Test menu"/]' in lines  # input: a parallelogram
    assert '  route{"<b>route</b>"}' in lines  # switch: a diamond
    assert '  ask -->|"digits → amount"| route' in lines
    assert '  route -->|"amount = 100"| bye' in lines
    assert '  route -->|"default"| bye' in lines
