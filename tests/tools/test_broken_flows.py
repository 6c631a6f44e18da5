"""Each `tests/flows/broken/<rule>.yaml` fails `hotline flows check` with its exact lines.

The fixtures are data: the expected output is the `# expect:` comments at the end of each
file (so they never shift the line numbers above them), `# with:` names files checked
first. The fixture catalogs in `broken/prompts/` hold one over-long label and one
sentence missing in English.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.cli import main

BROKEN = Path(__file__).resolve().parents[1] / "flows" / "broken"
FIXTURES = sorted(p for p in BROKEN.glob("*.yaml") if p.name != "valid.yaml")


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
        "unknown-action",
        "missing-prompt",
        "unreachable",
        "loop-without-wait",
        "duplicate-flow",
        "load",
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
