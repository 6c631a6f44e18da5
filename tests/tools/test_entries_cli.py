"""`hotline flows entries`: the entry table of the shipped flows, and the docs' copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.cli import main

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "flows" / "broken"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_shipped_entries_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "entries"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "| Channel | Entry | Flow | Starts at |",
        "|---|---|---|---|",
        "| USSD code | `*100#` | balance | main |",
        "| USSD code | `*100*1#` | balance | lookup_balance |",
        "| USSD code | `*101#` | data | lookup |",
        "| USSD code | `*101*5#` | data | survey_ask |",
        "| USSD code | `*102#` | topup | ask_card |",
        "| called number | `+8610086`, `*` | balance | voice_start |",
        "| called number | `+8610087` | data | survey_ask |",
        "| SMS keyword | `YE`, `CXYE`, `余额`, `balance`, `102` | balance | lookup_balance |",
        "| SMS keyword | `LL`, `CXLL`, `流量` | balance | lookup_data |",
        "| SMS keyword | `KTTX`, `开通提醒` | balance | reminder_sms_on |",
        "| SMS keyword | `QXTX`, `取消提醒` | balance | reminder_off |",
        "| SMS keyword | `BL`, `办理` | balance | plan_sms |",
        "| SMS keyword | `PJ` | data | survey_ask |",
    ]


def test_docs_table_is_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "entries"]) == 0
    table = capsys.readouterr().out
    docs = (ROOT / "docs" / "flow-authoring.md").read_text(encoding="utf-8")
    assert table in docs, "paste `hotline flows entries` into docs/flow-authoring.md#entries"


def test_two_flows_claiming_one_entry(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(BROKEN / "valid.yaml"), str(BROKEN / "entry-duplicate.yaml")]
    assert main(["flows", "entries", *files]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{files[1]}:8: entry ussd '*100#' of flow 'other' is also claimed by")
    assert err.rstrip().endswith("[entry-duplicate]")
