"""`flows check` measures every screen an SMS keyword reaches, whole, against the part
cap (`sms.max_parts`), by the layout's own rules (`sms.measure`, `hotline.flow.widest`).
Through the real CLI; the check and the layout agree at the edge."""

from __future__ import annotations

from pathlib import Path
from string import Template

import pytest

from hotline.base.config import Settings
from hotline.cli import main
from hotline.flow.check import WholeScreenCheck
from hotline.flow.model import Flow
from hotline.flow.screen import PromptPart, Screen
from hotline.flow.widest import reachable, widest_screens
from hotline.i18n.catalog import load_catalogs
from sms.measure import SmsScreenCheck
from sms.render import SmsLayout
from tests.sms.conftest import ROOT, sms_flows

_KEYS = (
    "result.balance_unknown",
    "result.data_unknown",
    "result.voice_unknown",
    "result.sms_unknown",
    "result.no_data",
    "result.no_voice",
    "result.no_sms",
    "error.busy",
    "common.goodbye",
)


def _long_prompt(conditional: bool) -> str:
    """Every key of `_KEYS` twice, 18 parts in YAML; every other one (`when: v1`, `v3`,
    …) shown only on a condition when `conditional`."""
    return "\n".join(
        f"      - {{ key: {key}" + (f", when: v{i} }}" if conditional and i % 2 else " }")
        for i, key in enumerate(_KEYS * 2)
    )


# Reached by the keyword ZD: a menu whose options lead to an end state that, with every
# part it can show (half of them conditional), needs four parts or more in each language,
# over the default cap of three. USSD reaches another state as long: not an SMS's.
LONG_FLOW = Template("""\
spec: 1
id: smslong
start: menu
entries:
  - sms: [ZD]
  - ussd: "*109#"
    state: unreached_by_sms
states:
  menu:
    kind: menu
    prompt: main.title
    options:
      - { key: "1", label: main.balance, next: everything }
      - { key: "2", label: main.exit, next: bye }
  everything:
    kind: end
    prompt:
$everything
  bye:
    kind: end
    prompt: common.goodbye
  unreached_by_sms:
    kind: end
    prompt:
$unreached
""").substitute(
    everything=_long_prompt(conditional=True), unreached=_long_prompt(conditional=False)
)


@pytest.fixture
def long_flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(ROOT)
    flows = sms_flows(tmp_path)
    (flows / "smslong.yaml").write_text(LONG_FLOW, "utf-8")
    monkeypatch.setenv("HOTLINE_FLOWS_DIR", str(flows))
    monkeypatch.setenv("HOTLINE_PROMPTS_DIR", str(ROOT / "prompts"))
    return flows


def test_sms_wording_over_the_part_cap_fails_flows_check(
    long_flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flows", "check"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "[screen-too-long]" in line]
    path = long_flows / "smslong.yaml"
    assert len(lines) == 2, err
    zh, en = sorted(lines, key=lambda line: " in en " in line)
    where = f"{path}:15: state 'everything' in "
    assert zh.startswith(where + "zh-CN by sms is 4 SMS parts at its widest (2"), zh
    assert en.startswith(where + "en by sms is "), en
    assert all(
        line.endswith("over the 3 allowed (sms.max_parts) [screen-too-long]") for line in lines
    )
    # A state only USSD reaches is not measured as an SMS; the menu fits.
    assert "unreached_by_sms" not in err and "'menu'" not in err


def test_a_higher_part_cap_passes(
    long_flows: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOTLINE_SMS__MAX_PARTS", "10")
    monkeypatch.setenv("HOTLINE_SMS__SIGNATURES", '{"en": " [hotline]"}')  # English GSM-7
    assert main(["flows", "check"]) == 0, capsys.readouterr().err


def test_the_shipped_flows_fit_even_at_one_part_but_for_named_states(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """At a cap of one part the check speaks up for the shipped SMS-reachable states
    (their widest screens), and only for those."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HOTLINE_SMS__MAX_PARTS", "1")
    main(["flows", "check"])
    lines = [line for line in capsys.readouterr().err.splitlines() if "[screen-too-long]" in line]
    assert lines, "a one-part cap must be too small for some shipped SMS screen"
    assert all("by sms is" in line and "over the 1 allowed" in line for line in lines)


def test_reachable_follows_targets_from_the_channels_entries(tmp_path: Path) -> None:
    import yaml

    flow = Flow.model_validate(yaml.safe_load(LONG_FLOW))
    assert reachable(flow, "sms") == ["menu", "everything", "bye"]
    assert reachable(flow, "ussd") == ["unreached_by_sms"]
    assert reachable(flow, "ivr") == []


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_check_and_layout_agree_at_the_edge(language: str) -> None:
    """The measure is the layout's: a screen the check passes is sent uncut, one it
    refuses would be cut with `…`."""
    catalogs = load_catalogs(ROOT / "prompts", ("zh-CN", "en"), "zh-CN")
    settings = Settings()
    check = SmsScreenCheck.from_settings(catalogs, settings)
    assert isinstance(check, WholeScreenCheck)
    layout = SmsLayout.from_settings(catalogs, settings.sms)
    verdicts = []
    for count in range(1, 16):
        screen = Screen("s", language, (PromptPart("result.balance_unknown"),) * count)
        verdict = check.screen(screen, catalogs[language])
        sent = layout.lay_out(screen).text
        signature = layout.signature_of(language)
        cut = sent.endswith(("…" + signature, "..." + signature))
        assert cut == (verdict is not None), (count, verdict, sent)
        verdicts.append(verdict is None)
    assert True in verdicts and False in verdicts
    flow = Flow.model_validate(__import__("yaml").safe_load(LONG_FLOW))
    screens = list(widest_screens(flow, "sms", catalogs[language]))
    assert [s.state for s in screens] == ["menu", "everything", "bye"]
    assert screens[0].notice is not None  # a menu can come back with the invalid notice
    assert len(screens[1].parts) == 18  # every part, whatever its `when`
