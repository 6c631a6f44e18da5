"""Entries (DESIGN.md §12): the pure table that says where a contact starts, on plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hotline.base.errors import FlowError
from hotline.flow.entries import (
    EntryMatch,
    EntryTable,
    entry_problems,
    normalise_keyword,
    normalise_number,
)
from hotline.flow.load import load_flow
from hotline.flow.model import Entry, Flow
from hotline.flow.registry import FlowRegistry

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "flows" / "broken"

_END = {"kind": "end", "prompt": "common.goodbye"}


def flow(flow_id: str, entries: list[dict[str, Any]], states: tuple[str, ...] = ()) -> Flow:
    """A flow of end states `main` (the start) and `states`, entered by `entries`."""
    doc = {
        "spec": 1,
        "id": flow_id,
        "start": "main",
        "entries": entries,
        "states": {name: _END for name in ("main", *states)},
    }
    return Flow.model_validate(doc).model_copy(update={"path": f"{flow_id}.yaml"})


BALANCE = flow(
    "balance",
    [
        {"ussd": "*100#"},
        {"ussd": "*100*1#", "state": "lookup_balance"},
        {"ussd": "*100*1*2#", "state": "deep"},
        {"ivr": "+8610086"},
        {"sms": ["YE", "CXYE", "余额", "balance", "102"], "state": "lookup_balance"},
    ],
    ("lookup_balance", "deep"),
)
DATA = flow("data", [{"ussd": "*101#"}, {"ivr": "*"}, {"sms": "LL"}])
TABLE = EntryTable.from_flows([BALANCE, DATA])


@pytest.mark.parametrize(
    ("channel", "entry", "inputs", "expected"),
    [
        # USSD: the base code plus what was dialled with it; the longest declared code wins
        ("ussd", "*100#", (), EntryMatch("balance", "main")),
        ("ussd", "*100#", ("1",), EntryMatch("balance", "lookup_balance")),
        ("ussd", "*100#", ("1", "2"), EntryMatch("balance", "deep")),
        ("ussd", "*100#", ("1", "2", "3"), EntryMatch("balance", "deep", ("3",))),
        ("ussd", "*100#", ("1", "9"), EntryMatch("balance", "lookup_balance", ("9",))),
        ("ussd", "*100#", ("2", "1"), EntryMatch("balance", "main", ("2", "1"))),
        ("ussd", "*100#", ("",), EntryMatch("balance", "main", ("",))),
        # ... or the full code as the entry
        ("ussd", "*100*1#", (), EntryMatch("balance", "lookup_balance")),
        ("ussd", "*100*1*2*3#", (), EntryMatch("balance", "deep", ("3",))),
        ("ussd", "*100*7#", ("8",), EntryMatch("balance", "main", ("7", "8"))),
        ("ussd", " *101# ", (), EntryMatch("data", "main")),
        ("ussd", "*102#", (), None),
        ("ussd", "*10#", ("0",), None),  # `*10#` + 0 is not `*100#`
        ("ussd", "100", (), None),
        ("ussd", "", (), None),
        # IVR: one canonical number; `*` takes what nobody else claims
        ("ivr", "+8610086", (), EntryMatch("balance", "main")),
        ("ivr", "8610086", (), EntryMatch("balance", "main")),
        ("ivr", "008610086", (), EntryMatch("balance", "main")),
        ("ivr", "+86 100-86", ("1",), EntryMatch("balance", "main", ("1",))),
        ("ivr", "10086", (), EntryMatch("data", "main")),  # no country code: another number
        ("ivr", "+8613800138000", (), EntryMatch("data", "main")),
        ("ivr", "client:alice", (), EntryMatch("data", "main")),
        # SMS: first word, any case and width; the rest are inputs
        ("sms", "YE", (), EntryMatch("balance", "lookup_balance")),
        ("sms", "ye", (), EntryMatch("balance", "lookup_balance")),
        ("sms", "ＹＥ", (), EntryMatch("balance", "lookup_balance")),  # full-width
        ("sms", "  Cxye  ", (), EntryMatch("balance", "lookup_balance")),
        ("sms", "余额", (), EntryMatch("balance", "lookup_balance")),
        (
            "sms",
            "BALANCE please now",
            (),
            EntryMatch("balance", "lookup_balance", ("please", "now")),
        ),
        (
            "sms",
            "ＹＥ　１",
            (),
            EntryMatch("balance", "lookup_balance", ("1",)),
        ),  # ideographic space
        ("sms", "１０２", (), EntryMatch("balance", "lookup_balance")),
        ("sms", "ll", ("x",), EntryMatch("data", "main", ("x",))),
        ("sms", "YES", (), None),
        ("sms", "余", (), None),
        ("sms", "   ", (), None),
        ("sms", "", (), None),
        # channels are exactly ussd, ivr, sms
        ("USSD", "*100#", (), None),
        ("api", "*100#", (), None),
    ],
)
def test_resolve(
    channel: str, entry: str, inputs: tuple[str, ...], expected: EntryMatch | None
) -> None:
    assert TABLE.resolve(channel, entry, inputs) == expected


def test_plain_dials_answer_the_same_every_time_and_past_the_memo_bound() -> None:
    """A table remembers the plain dials it resolved; what it answers never changes, for
    a dial with inputs, an unknown or malformed code, or after more codes than it keeps."""
    table = EntryTable.from_flows([BALANCE, DATA])
    asks = [
        ("*100#", (), EntryMatch("balance", "main")),
        ("*100#", ("1",), EntryMatch("balance", "lookup_balance")),
        ("*100*1*2*3#", (), EntryMatch("balance", "deep", ("3",))),
        ("*999#", (), None),
        ("100#", (), None),
        ("*101#", (), EntryMatch("data", "main")),
    ]
    for _ in range(2):
        for code, inputs, expected in asks:
            assert table.resolve("ussd", code, inputs) == expected
    for n in range(3000):  # a gateway sending ever new codes: the memo starts afresh
        assert table.resolve("ussd", f"*5{n}#") is None
    for code, inputs, expected in asks:
        assert table.resolve("ussd", code, inputs) == expected
    assert table
    assert not EntryTable.from_flows([])


def test_without_a_wildcard_an_unclaimed_number_is_no_match() -> None:
    table = EntryTable.from_flows([BALANCE])
    assert table.resolve("ivr", "10086") is None
    assert table.resolve("ivr", "+8610086") == EntryMatch("balance", "main")
    assert EntryTable.from_flows([]).resolve("ussd", "*100#", ("1",)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("YE", "ye"),
        ("ＹＥ", "ye"),
        ("  Cxye\n", "cxye"),
        ("余额", "余额"),
        ("ＢＡＬＡＮＣＥ", "balance"),
        ("Straße", "strasse"),
        ("１０２", "102"),
        ("", ""),
    ],
)
def test_normalise_keyword(text: str, expected: str) -> None:
    assert normalise_keyword(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+8610086", "8610086"),
        ("008610086", "8610086"),
        ("8610086", "8610086"),
        ("+86 (10) 086", "8610086"),
        ("+86-10086", "8610086"),
        ("10086", "10086"),
        ("+8613800138000", "13800138000"),  # a Chinese mobile, as subscribers are folded
        ("008613800138000", "13800138000"),
        ("13800138000", "13800138000"),
        ("110", "110"),  # short codes keep their digits
        ("+110", "110"),
        ("*", "*"),
        ("client:alice", "client:alice"),
        (" sip:100@example.org ", "sip:100@example.org"),
    ],
)
def test_normalise_number(text: str, expected: str) -> None:
    assert normalise_number(text) == expected


def test_entry_points_expand_aliases_and_default_to_start() -> None:
    assert DATA.entry_points() == (
        Entry("ussd", "*101#", "main"),
        Entry("ivr", "*", "main"),
        Entry("sms", "LL", "main"),
    )
    assert [e.pattern for e in BALANCE.entry_points() if e.channel == "sms"] == [
        "YE",
        "CXYE",
        "余额",
        "balance",
        "102",
    ]


def test_rows_by_channel_in_file_order() -> None:
    assert TABLE.rows() == [
        ("ussd", "*100#", "balance", "main"),
        ("ussd", "*100*1#", "balance", "lookup_balance"),
        ("ussd", "*100*1*2#", "balance", "deep"),
        ("ussd", "*101#", "data", "main"),
        ("ivr", "+8610086", "balance", "main"),
        ("ivr", "*", "data", "main"),
        *[
            ("sms", k, "balance", "lookup_balance")
            for k in ("YE", "CXYE", "余额", "balance", "102")
        ],
        ("sms", "LL", "data", "main"),
    ]


def _problems(*flows: Flow) -> list[str]:
    return [str(p) for p in entry_problems(flows)]


def test_two_flows_claiming_one_entry_are_both_reported() -> None:
    one = flow("one", [{"sms": "YE"}, {"ivr": "+8610086"}, {"ussd": "*100#"}])
    two = flow("two", [{"sms": ["ok", "ｙｅ"]}, {"ivr": "008610086"}, {"ussd": "*100*1#"}])
    assert _problems(one, two) == [
        "one.yaml:0: entry ivr '+8610086' of flow 'one' is also claimed by two.yaml:0 "
        "(flow 'two') [entry-duplicate]",
        "one.yaml:0: entry sms 'YE' of flow 'one' is also claimed by two.yaml:0 (flow 'two') "
        "[entry-duplicate]",
        "two.yaml:0: entry ivr '008610086' of flow 'two' is also claimed by one.yaml:0 "
        "(flow 'one') [entry-duplicate]",
        "two.yaml:0: entry sms 'ｙｅ' of flow 'two' is also claimed by one.yaml:0 (flow 'one') "
        "[entry-duplicate]",
    ]


def test_two_wildcards_and_one_flow_claiming_twice_are_duplicates() -> None:
    one = flow("one", [{"ivr": "*"}, {"sms": ["YE", "ye"]}])
    two = flow("two", [{"ivr": "*"}])
    codes = [(p.path, p.code, p.message.split(" of flow")[0]) for p in entry_problems([one, two])]
    assert sorted(codes) == [
        ("one.yaml", "entry-duplicate", "entry ivr '*'"),
        ("one.yaml", "entry-duplicate", "entry sms 'YE'"),
        ("one.yaml", "entry-duplicate", "entry sms 'ye'"),
        ("two.yaml", "entry-duplicate", "entry ivr '*'"),
    ]


@pytest.mark.parametrize(
    "entry",
    [
        {"ussd": "100#"},
        {"ussd": "*100"},
        {"ussd": "*100**1#"},
        {"ussd": "*10a#"},
        {"ussd": "#100#"},
        {"ivr": "10"},
        {"ivr": "+" + "1" * 21},
        {"ivr": "+86 10086"},
        {"ivr": "**"},
        {"sms": ""},
        {"sms": "  "},
        {"sms": "CX YE"},
    ],
    ids=str,
)
def test_a_pattern_that_cannot_match(entry: dict[str, Any]) -> None:
    (problem,) = entry_problems([flow("f", [entry])])
    assert problem.code == "entry-pattern"
    assert "can never match" in problem.message


@pytest.mark.parametrize(
    "entry", [{"ussd": "*1*2*3*4#"}, {"ivr": "110"}, {"ivr": "+" + "1" * 20}, {"sms": "余额"}]
)
def test_patterns_at_the_limits_are_fine(entry: dict[str, Any]) -> None:
    assert entry_problems([flow("f", [entry])]) == []


def test_an_entry_naming_an_unknown_state() -> None:
    (problem,) = entry_problems([flow("f", [{"ussd": "*100*9#", "state": "nowhere"}])])
    assert (
        str(problem) == "f.yaml:0: entry ussd '*100*9#' names unknown state 'nowhere' [entry-state]"
    )


def test_from_flows_refuses_a_problem_with_its_location() -> None:
    with pytest.raises(FlowError) as caught:
        EntryTable.from_flows([BALANCE, flow("other", [{"sms": "ye"}])])
    assert str(caught.value).startswith("balance.yaml:0: entry sms 'YE' of flow 'balance'")
    assert str(caught.value).endswith("[entry-duplicate]")


def test_shipped_flows_entries() -> None:
    flows = [load_flow(path) for path in sorted((ROOT / "flows").glob("*.yaml"))]
    table = EntryTable.from_flows(flows)
    assert table.resolve("ussd", "*100#") == EntryMatch("balance", "main")
    assert table.resolve("ussd", "*100#", ("1",)) == EntryMatch("balance", "lookup_balance")
    assert table.resolve("ussd", "*100#", ("2",)) == EntryMatch("balance", "main", ("2",))
    assert table.resolve("ussd", "*101#") == EntryMatch("data", "lookup")
    assert table.resolve("ivr", "+8610086") == EntryMatch("balance", "voice_start")
    assert table.resolve("ivr", "+8610000") == EntryMatch("balance", "voice_start")  # `ivr: "*"`
    assert table.resolve("sms", "余额") == EntryMatch("balance", "lookup_balance")
    assert table.resolve("sms", "ｃｘｌｌ") == EntryMatch("balance", "lookup_data")
    assert table.resolve("ussd", "*999#") is None


def test_startup_refuses_two_flows_claiming_one_entry(tmp_path: Path) -> None:
    for name in ("valid.yaml", "entry-duplicate.yaml"):
        (tmp_path / name).write_text((BROKEN / name).read_text("utf-8"), "utf-8")
    with pytest.raises(FlowError) as caught:
        FlowRegistry.from_directory(tmp_path)
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "entry-duplicate.yaml"), 8)
    assert str(caught.value).endswith("[entry-duplicate]")


@pytest.mark.parametrize("rule", ["entry-state", "entry-pattern"])
def test_startup_refuses_an_unservable_entry(tmp_path: Path, rule: str) -> None:
    (tmp_path / "f.yaml").write_text((BROKEN / f"{rule}.yaml").read_text("utf-8"), "utf-8")
    with pytest.raises(FlowError, match=rf"\[{rule}\]$"):
        FlowRegistry.from_directory(tmp_path)


def test_registry_entries_and_a_refused_install_changes_nothing() -> None:
    registry = FlowRegistry.from_directory(ROOT / "flows")
    assert registry.entries.resolve("ussd", "*101#") == EntryMatch("data", "lookup")
    with pytest.raises(FlowError, match=r"entry-duplicate"):
        registry.install([flow("other", [{"ussd": "*101#"}])])
    assert registry.current("other") is None
    assert registry.entries.resolve("ussd", "*101#") == EntryMatch("data", "lookup")
    # a new version of a flow may keep its own entries
    data = registry.current("data")
    assert data is not None
    registry.install([data.model_copy(update={"version": "next"})])
    assert registry.entries.resolve("ussd", "*101#") == EntryMatch("data", "lookup")
