"""`hotline flows check` on the shipped flow and on broken copies of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.base.errors import FlowError
from hotline.base.yamlsrc import load_located
from hotline.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "flows" / "balance.yaml").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_shipped_flow_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "check"]) == 0
    assert "ok: 3 flow file(s), 2 language(s)" in capsys.readouterr().out


def broken(tmp_path: Path, old: str, new: str) -> Path:
    assert old in SHIPPED
    path = tmp_path / "balance.yaml"
    path.write_text(SHIPPED.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if line.strip() == needle.strip():
            return number
    for number, line in enumerate(lines, start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            "next: show_balance",
            "next: show_balanse",
            "next: show_balanse",
            "state 'lookup_balance': next names unknown state 'show_balanse'",
        ),
        (
            '{ key: "6", label: main.exit, next: goodbye }',
            '{ key: "2", label: main.exit, next: goodbye }',
            '{ key: "2", label: main.exit',
            "state 'main': option key '2' is used twice",
        ),
        (
            "action: subscriber.set_language\n    args: { language: en }",
            "action: subscriber.set_lang\n    args: { language: en }",
            "action: subscriber.set_lang",
            "state 'set_english': action 'subscriber.set_lang' is not registered",
        ),
        (
            "prompt: common.goodbye",
            "prompt: common.farewell",
            "  goodbye:",
            "state 'goodbye': prompt 'common.farewell' is missing in zh-CN",
        ),
        (
            "  rate_limited:\n",
            "  orphan:\n    kind: end\n    prompt: common.goodbye\n  rate_limited:\n",
            "  orphan:",
            "state 'orphan' can never be reached",
        ),
        (
            '{ key: "6", label: main.exit, next: goodbye }',
            '{ key: "98", label: main.exit, next: goodbye }',
            '{ key: "98"',
            "state 'main': option key '98' is the more key",
        ),
        (
            "    next: main\n    on_error: system_busy\n\n  set_english:",
            "    next: set_chinese\n    on_error: system_busy\n\n  set_english:",
            "  set_chinese:",
            "states loop without waiting for input: set_chinese → set_chinese",
        ),
        (
            "kind: end\n    prompt: error.busy",
            "kind: finish\n    prompt: error.busy",
            "  system_busy:",
            "states.system_busy: unknown state kind",
        ),
        (
            "max_invalid: 3",
            "max_invalid: 3\nmax_invalid: 4",
            "max_invalid: 4",
            "duplicate key 'max_invalid'",
        ),
        ("    on_error: system_busy\n", "    on_eror: system_busy\n", "on_eror", "unknown field"),
        (
            "    state: lookup_balance\n  - ivr:",
            "    state: lookup_balanse\n  - ivr:",
            '- ussd: "*100*1#"',  # the entry's own line
            "entry ussd '*100*1#' names unknown state 'lookup_balanse' [entry-state]",
        ),
        (
            '- ussd: "*100#"',
            '- ussd: "*100"',
            '- ussd: "*100"',
            "entry ussd '*100' can never match",
        ),
        (
            "sms: [LL, CXLL, 流量]",
            "sms: [LL, CXLL, ＣＸＹＥ]",
            "sms: [LL, CXLL, ＣＸＹＥ]",
            "entry sms 'ＣＸＹＥ' of flow 'balance' is also claimed by",
        ),
        (
            '  - ivr: "*"',
            '  - ivr: "*"\n    sms: YE',
            '  - ivr: "*"',  # the item's line
            "exactly one of ussd, ivr or sms",
        ),
    ],
)
def test_broken_flow_is_reported_at_its_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    needle: str,
    message: str,
) -> None:
    path = broken(tmp_path, old, new)
    assert main(["flows", "check", str(path)]) == 1
    err = capsys.readouterr().err
    expected = f"{path}:{line_of(path, needle)}: "
    assert any(line.startswith(expected) and message in line for line in err.splitlines()), err


def test_option_too_long_for_a_chinese_screen(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in ("zh-CN.yaml", "en.yaml"):
        text = (ROOT / "prompts" / name).read_text(encoding="utf-8")
        (prompts / name).write_text(
            text.replace("balance: 话费余额", "balance: " + "话" * 90), encoding="utf-8"
        )
    (tmp_path / "hotline.yaml").write_text(f"prompts_dir: {prompts}\n", encoding="utf-8")
    code = main(["flows", "check", "--config", str(tmp_path / "hotline.yaml"), str(ROOT / "flows")])
    assert code == 1


def test_prompts_the_channels_say_are_required(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in ("zh-CN.yaml", "en.yaml"):
        text = (ROOT / "prompts" / name).read_text(encoding="utf-8")
        if name == "en.yaml":
            text = text.replace("    repeat: To hear this again, press star.\n", "")
        (prompts / name).write_text(text, encoding="utf-8")
    (tmp_path / "hotline.yaml").write_text(f"prompts_dir: {prompts}\n", encoding="utf-8")
    code = main(["flows", "check", "--config", str(tmp_path / "hotline.yaml"), str(ROOT / "flows")])
    assert code == 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", 1),  # deeper than the composer's recursion
        ("id: x\nloop: &a [*a]\n", 2),  # an alias inside itself
        # "billion laughs": nine levels of ten aliases each, 10^9 values from 400 bytes
        (
            "id: x\n"
            + "".join(
                f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}" if i else "x"] * 10) + "]\n"
                for i in range(9)
            ),
            None,
        ),
    ],
    ids=["deep", "recursive-alias", "alias-bomb"],
)
def test_hostile_yaml_is_a_located_error(tmp_path: Path, text: str, line: int | None) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_located(path)
    assert str(caught.value).startswith(f"{path}:")
    if line is not None:
        assert caught.value.line == line


def test_a_state_only_an_entry_starts_is_reachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "balance.yaml"
    path.write_text(SHIPPED, encoding="utf-8")
    assert main(["flows", "check", str(path)]) == 0  # `voice_start`: only the calls' entries
    path.write_text(SHIPPED.replace("    state: voice_start\n", ""), encoding="utf-8")
    assert main(["flows", "check", str(path)]) == 1
    err = capsys.readouterr().err
    line = line_of(path, "  voice_start:")
    assert f"{path}:{line}: state 'voice_start' can never be reached [unreachable]" in err
