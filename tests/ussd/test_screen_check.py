"""`flows check` measures USSD options with the channel's own rules (`ussd.measure`).

The check and the renderer must agree: an option the check passes is shown whole on a
page, one it rejects would be cut. Through the real CLI: GSM-7 extension characters are
GSM-7 (the old copy in `hotline/flow/check.py` budgeted any non-ASCII as UCS-2 against
80), and the configured `ussd.gsm7_limit` is the limit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hotline.base.config import Settings
from hotline.cli import main
from hotline.flow.screen import Option, PromptPart, Screen
from hotline.i18n.catalog import CatalogSet, load_catalogs
from ussd.budget import Limits
from ussd.measure import UssdScreenCheck
from ussd.render import UssdLayout

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("zh-CN", "en")
NAV_ZH = "  ussd:\n    more: 98.更多\n    back: 0.返回\n    prev: 0.上页\n    home: 00.主页\n    page: ({page:int}/{pages:int})\n"
NAV_EN = "  ussd:\n    more: 98.More\n    back: 0.Back\n    prev: 0.Prev\n    home: 00.Home\n    page: ({page:int}/{pages:int})\n"


def _catalogs(tmp_path: Path, label_zh: str, label_en: str) -> CatalogSet:
    body = "  t:\n    title: {title}\n    a: '{a}'\n    b: {b}\n"
    (tmp_path / "zh-CN.yaml").write_text(
        "language: zh-CN\nprompts:\n" + NAV_ZH + body.format(title="菜单", a=label_zh, b="其他"),
        encoding="utf-8",
    )
    (tmp_path / "en.yaml").write_text(
        "language: en\nprompts:\n" + NAV_EN + body.format(title="Menu", a=label_en, b="Other"),
        encoding="utf-8",
    )
    return load_catalogs(tmp_path, LANGS, "zh-CN")


def _shown_whole(layout: UssdLayout, language: str, line: str) -> bool:
    options = (Option("1", PromptPart("t.a")), Option("2", PromptPart("t.b")))
    screen = Screen(
        "main", language, (PromptPart("t.title"),), options, can_go_back=True, can_go_home=True
    )
    return any(line in page.split("\n") for page in layout.pages(screen))


@pytest.mark.parametrize(
    ("language", "unit", "limits"),
    [
        ("en", "a€", Limits()),  # GSM-7 with extension characters (2 septets each)
        ("en", "ab", Limits(120, 60)),  # configured limits
        ("zh-CN", "余额", Limits()),  # UCS-2
        ("zh-CN", "话费", Limits(182, 50)),
    ],
)
def test_check_and_renderer_agree_at_the_edge(
    tmp_path: Path, language: str, unit: str, limits: Limits
) -> None:
    settings = Settings(ussd={"gsm7_limit": limits.gsm7, "ucs2_limit": limits.ucs2})
    verdicts = []
    for repeat in range(10, 90):
        label = unit * repeat
        subdir = tmp_path / str(repeat)
        subdir.mkdir()
        catalogs = _catalogs(subdir, label, label)
        check = UssdScreenCheck.from_settings(catalogs, settings)
        verdict = check.option(f"1.{label}", catalogs[language])
        layout = UssdLayout(catalogs, limits)
        assert _shown_whole(layout, language, f"1.{label}") == (verdict is None), (
            repeat,
            verdict,
        )
        verdicts.append(verdict is None)
    assert True in verdicts and False in verdicts  # the edge is inside the range


def _prompts_with_exit(tmp_path: Path, exit_en: str) -> Path:
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    en = prompts / "en.yaml"
    text = en.read_text(encoding="utf-8")
    assert "    exit: Exit\n" in text
    en.write_text(text.replace("    exit: Exit\n", f"    exit: '{exit_en}'\n"), encoding="utf-8")
    return prompts


# 148 characters, 3 of them GSM-7 extension characters: 151 septets.
EURO_EXIT = "Exit [roaming packs from €5] " + "x" * 119


@pytest.fixture
def euro_prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(ROOT)
    prompts = _prompts_with_exit(tmp_path, EURO_EXIT)
    monkeypatch.setenv("HOTLINE_PROMPTS_DIR", str(prompts))
    return prompts


def test_gsm7_extension_characters_fit_the_real_budget(
    euro_prompts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = f"6.{EURO_EXIT}"
    # What the old copy did: non-ASCII → UCS-2, 150 units over its 80-unit screen.
    assert not line.isascii() and len(line) > 80
    assert main(["flows", "check"]) == 0, capsys.readouterr().err
    assert "ok: 3 flow file(s)" in capsys.readouterr().out


def test_an_option_over_the_configured_limit_is_rejected(
    euro_prompts: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOTLINE_USSD__GSM7_LIMIT", "150")
    assert main(["flows", "check"]) == 1
    lines = (ROOT / "flows" / "balance.yaml").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if 'key: "6"' in text)
    assert capsys.readouterr().err.splitlines() == [
        f"flows/balance.yaml:{line}: state 'main': option '6' in en is 153 characters, over the "
        "138 a USSD screen has for it (150 GSM-7 septets less 4 for `CON ` and 8 for the "
        "`98.More` line) [option-too-long]",
        "1 problem(s) in 3 flow file(s)",
    ]


def test_only_mounted_channels_measure(
    euro_prompts: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the USSD channel, nothing measures USSD screens."""
    monkeypatch.setenv("HOTLINE_USSD__GSM7_LIMIT", "150")
    monkeypatch.setenv("HOTLINE_CHANNELS", '["ivr"]')
    assert main(["flows", "check"]) == 0, capsys.readouterr().err
