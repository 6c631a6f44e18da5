"""`hotline actions`: every registered action with its inputs, variables and outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hotline.cli import main
from hotline.flow.actions import ACTIONS

ROOT = Path(__file__).resolve().parents[2]


def _listed(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    assert main(["actions", "--json"]) == 0
    return {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}


def test_json_lists_every_registered_action(capsys: pytest.CaptureFixture[str]) -> None:
    listed = _listed(capsys)
    assert sorted(listed) == ACTIONS.names()
    lookup = listed["balance.lookup"]
    assert lookup["args"] == []
    assert lookup["outcomes"] == ["ok", "not_found", "suspended", "limited", "error"]
    assert lookup["sets"] == {
        name: ACTIONS.spec("balance.lookup").sets[name]  # type: ignore[union-attr]
        for name in lookup["sets"]  # type: ignore[union-attr]
    }
    sets = lookup["sets"]
    assert isinstance(sets, dict)
    assert {k: sets[k] for k in ("balance", "owed", "data", "voice", "sms")} == {
        "balance": "money",
        "owed": "money",
        "data": "volume",
        "voice": "duration",
        "sms": "int",
    }
    assert sets["data_expiry"] == "date" and sets["as_of"] == "time"
    assert sets["stale"] == "flag" and sets["balance_unknown"] == "flag"
    language = listed["subscriber.set_language"]
    assert [a["name"] for a in language["args"]] == ["language"]  # type: ignore[index,union-attr]
    assert language["outcomes"] == ["ok", "error"]
    assert language["doc"] == "Switch the conversation language and remember it for this number."


def test_the_shipped_flow_uses_only_listed_args_and_outcomes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listed = _listed(capsys)
    flow = yaml.safe_load((ROOT / "flows" / "balance.yaml").read_text(encoding="utf-8"))
    used = [s for s in flow["states"].values() if s["kind"] == "action"]
    assert used
    for state in used:
        spec = listed[state["action"]]
        assert set(state.get("on", {})) <= set(spec["outcomes"])  # type: ignore[arg-type]
        assert set(state.get("args", {})) <= {a["name"] for a in spec["args"]}  # type: ignore[index,union-attr]


def test_the_table_names_each_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["actions"]) == 0
    out = capsys.readouterr().out
    assert "balance.lookup" in out and "not_found" in out and "balance: money" in out
