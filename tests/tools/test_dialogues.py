"""Every shipped dialogue (`dialogues/*.yaml`) is a test, run like `hotline dialogues run`.

Each gets a fresh hotline on a loopback port (its own ledger with the demo subscribers)
and is driven over HTTP exactly as a gateway would; a failure shows the runner's report.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from hotline.base.config import load_settings
from hotline.base.errors import FlowError
from hotline.cli import main
from hotline.cli.dialogues import run_all
from hotline.dialogue import load_dialogue
from hotline.dialogue.report import print_result

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "dialogues").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    # `hotline dialogues run` quiets the `hotline` logger for its process; give the level
    # back, or later tests that read log lines (tests/web/test_log_privacy.py) see none.
    hotline_log = logging.getLogger("hotline")
    level = hotline_log.level
    yield
    hotline_log.setLevel(level)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
async def test_dialogue(path: Path) -> None:
    dialogue = load_dialogue(path.relative_to(ROOT))
    [result] = await run_all([dialogue], load_settings())
    assert not result.skipped, f"{path.name}: {result.skipped}"  # the app publishes SPEECH_TEXT
    report = io.StringIO()
    print_result(Console(file=report, width=200), result, verbose=True)
    assert result.ok, report.getvalue()


def test_every_state_of_the_balance_flow_is_walked_in_both_languages() -> None:
    """The shipped dialogues reach every state's screen in zh-CN and in en."""
    import yaml

    flow = yaml.safe_load((ROOT / "flows" / "balance.yaml").read_text(encoding="utf-8"))
    prompts = {
        lang: yaml.safe_load((ROOT / "prompts" / f"{lang}.yaml").read_text(encoding="utf-8"))
        for lang in ("zh-CN", "en")
    }
    for lang, catalog in prompts.items():
        scripts = "\n".join(
            p.read_text(encoding="utf-8") for p in SHIPPED if load_dialogue(p).language == lang
        )
        for name, state in flow["states"].items():
            if state["kind"] not in ("menu", "end"):
                continue  # actions and switches have no screen of their own
            prompt = state["prompt"]
            key = prompt if isinstance(prompt, str) else prompt[0]["key"]
            group, leaf = key.split(".")
            sentence = catalog["prompts"][group][leaf]
            head = sentence.split("{")[0].strip() or sentence
            assert head in scripts, f"{lang}: no dialogue expects state {name!r} ({head!r})"


def test_failures_are_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "wrong.yaml"
    script.write_text(
        'name: wrong\nas: "+8613800138000"\nsteps:\n  - dial: "*100#"\n'
        "  - press: 1\n    expect: 您的话费余额为99.99元\n",
        encoding="utf-8",
    )
    assert main(["dialogues", "run", str(script)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {script}" in out
    assert f"✗ {script}:5: press 1 → END 您的话费余额为12.50元。" in out
    assert "expected '您的话费余额为99.99元'" in out
    assert "0 passed, 1 failed" in out


def test_a_bad_script_is_a_located_error(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(
        'name: bad\nas: "+86138"\nsteps:\n  - press: 1\n    expct: x\n', encoding="utf-8"
    )
    with pytest.raises(FlowError) as caught:
        load_dialogue(script)
    assert str(caught.value) == f"{script}:5: steps.0.expct: unknown field"


def test_keys_are_text_as_typed(tmp_path: Path) -> None:
    script = tmp_path / "keys.yaml"
    script.write_text(
        'name: keys\nas: 8613800138000\nsteps:\n  - dial: "*100#"\n  - press: 00\n'
        "  - press: 0\n  - press: 98\n",
        encoding="utf-8",
    )
    dialogue = load_dialogue(script)
    assert [s.press for s in dialogue.steps[1:]] == ["00", "0", "98"]
    assert dialogue.msisdn == "8613800138000"


def test_an_unconfigured_language_fails_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "fr.yaml"
    script.write_text(
        'name: fr\nas: "+8613800138000"\nlanguage: fr\nsteps:\n  - dial: "*100#"\n',
        encoding="utf-8",
    )
    assert main(["dialogues", "run", str(script)]) == 1
    out = capsys.readouterr().out
    assert "language 'fr' is not configured (zh-CN, en)" in out


def test_against_a_running_server_with_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--url` drives a separately started `hotline serve` over real HTTP."""
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "HOTLINE_BALANCE__LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "hotline", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120  # start-up on a busy machine
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "hotline serve did not start"
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        code = main(
            [
                "dialogues",
                "run",
                "--url",
                url,
                "dialogues/zh-CN-lookups.yaml",
                "dialogues/zh-CN-system-busy.yaml",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        assert "PASS dialogues/zh-CN-lookups.yaml" in out
        assert "SKIP dialogues/zh-CN-system-busy.yaml" in out
        assert "1 passed, 0 failed, 1 skipped" in out
    finally:
        server.terminate()
        server.wait(timeout=10)
