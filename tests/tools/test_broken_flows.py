"""Each `tests/flows/broken/<rule>.yaml` fails `hotline flows check` with its exact lines.

The fixtures are data: the expected output is the `# expect:` comments at the end of each
file (so they never shift the line numbers above them), `# with:` names files checked
first. The fixture catalogs in `broken/prompts/` hold one over-long label and one
sentence missing in English. `broken/prompts-broken/<rule>/zh-CN.yaml` breaks one prompt
rule each; `flows check` reports those like flow problems (`[rule]`, a count).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.base.yamlsrc import YAML_RULE
from hotline.cli import main
from hotline.i18n.catalog import PROMPT_RULES

BROKEN = Path(__file__).resolve().parents[1] / "flows" / "broken"
FIXTURES = sorted(p for p in BROKEN.glob("*.yaml") if p.name != "valid.yaml")
# One directory per prompt rule, holding a broken `zh-CN.yaml` (checked as the only language).
PROMPT_FIXTURES = sorted(p for p in (BROKEN / "prompts-broken").iterdir() if p.is_dir())


def _directives(path: Path, name: str) -> list[str]:
    prefix = f"# {name}: "
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


@pytest.fixture(autouse=True)
def _in_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    monkeypatch.setenv("HOTLINE_PROMPTS_DIR", "prompts")


def test_every_rule_has_a_fixture() -> None:
    codes = {
        line.rsplit("[", 1)[1].rstrip("]") for f in FIXTURES for line in _directives(f, "expect")
    }
    assert codes >= {
        "unknown-state",
        "unknown-start",
        "duplicate-option",
        "reserved-key",
        "option-too-long",
        "screen-too-long",
        "unknown-action",
        "unfed-placeholder",
        "unknown-service",
        "action-args",
        "survey-scale",
        "missing-prompt",
        "unreachable",
        "loop-without-wait",
        "duplicate-flow",
        "entry-duplicate",
        "entry-state",
        "entry-pattern",
        "load",
        "yaml",
    }


def test_fixture_catalogs_and_partner_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "check", "valid.yaml"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_broken_flow_fails_with_exact_lines(
    fixture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _directives(fixture, "expect")
    assert expected, f"{fixture.name} has no `# expect:` line"
    files = [*_directives(fixture, "with"), fixture.name]
    assert main(["flows", "check", *files]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [*expected, f"{len(expected)} problem(s) in {len(files)} flow file(s)"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_a_broken_flow_says_where_without_a_traceback(
    tmp_path: Path, workers: str
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "broken.yaml").write_text((BROKEN / "invalid-yaml.yaml").read_text("utf-8"), "utf-8")
    env = {
        **os.environ,
        "HOTLINE_FLOWS_DIR": str(flows),
        "HOTLINE_PROMPTS_DIR": str(BROKEN / "prompts"),
        "HOTLINE_JSON_LOGS": "true",
    }
    program = "import sys; from hotline.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", program, "serve", "--port", "1", "--workers", workers],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert "broken.yaml:" in done.stderr, done.stderr


def test_every_prompt_rule_has_a_fixture() -> None:
    codes = {
        line.rsplit("[", 1)[1].rstrip("]")
        for d in PROMPT_FIXTURES
        for line in _directives(d / "zh-CN.yaml", "expect")
    }
    assert codes == {*PROMPT_RULES, YAML_RULE}


@pytest.mark.parametrize("fixture", PROMPT_FIXTURES, ids=lambda p: p.name)
def test_broken_prompts_fail_like_flows_with_rule_and_count(
    fixture: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_PROMPTS_DIR", str(fixture.relative_to(BROKEN)))
    monkeypatch.setenv("HOTLINE_LANGUAGES", '["zh-CN"]')
    expected = _directives(fixture / "zh-CN.yaml", "expect")
    assert expected, f"{fixture.name}/zh-CN.yaml has no `# expect:` line"
    assert main(["flows", "check", "valid.yaml"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        *expected,
        f"{len(expected)} problem(s) in 1 prompt file(s); the flows are checked once the "
        "prompts load",
    ]


def test_problems_in_several_prompt_files_are_all_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for lang, broken in (("zh-CN", "prompt-brace"), ("en", "prompt-key")):
        text = (BROKEN / "prompts-broken" / broken / "zh-CN.yaml").read_text("utf-8")
        (tmp_path / f"{lang}.yaml").write_text(text.replace("zh-CN", lang), "utf-8")
    monkeypatch.setenv("HOTLINE_PROMPTS_DIR", str(tmp_path))
    assert main(["flows", "check", "valid.yaml"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.rsplit(" [", 1)[1] for line in lines[:-1]] == [
        "prompt-key]",
        "prompt-brace]",
        "prompt-brace]",
    ]
    assert lines[0].startswith(f"{tmp_path}/en.yaml:6: prompt key 'main.Title'")
    assert lines[-1].startswith("3 problem(s) in 2 prompt file(s)")


def test_serve_with_two_flows_claiming_one_entry_says_where(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("valid.yaml", "entry-duplicate.yaml"):
        (flows / name).write_text((BROKEN / name).read_text("utf-8"), "utf-8")
    env = {
        **os.environ,
        "HOTLINE_FLOWS_DIR": str(flows),
        "HOTLINE_PROMPTS_DIR": str(BROKEN / "prompts"),
    }
    program = "import sys; from hotline.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", program, "serve", "--port", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert (
        f"{flows / 'entry-duplicate.yaml'}:8: entry ussd '*100#' of flow 'other' is also claimed "
        f"by {flows / 'valid.yaml'}:6 (flow 'valid') [entry-duplicate]"
    ) in done.stderr, done.stderr
