"""The flow reference in docs/flow-authoring.md is generated from the loader's models and
cannot drift: a stale copy fails `hotline flows reference --check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hotline.cli import main
from hotline.flow import model
from hotline.flow.reference import BEGIN, END, reference

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "flow-authoring.md"
MODELS = (
    model.Flow,
    model.MenuState,
    model.InputState,
    model.ActionState,
    model.SwitchState,
    model.EndState,
    model.Option,
    model.PromptRef,
    model.SwitchCase,
    model.Navigation,
)


def test_the_doc_holds_a_fresh_reference(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["flows", "reference", "--check", "--doc", str(DOC)])
    assert code == 0, capsys.readouterr().err
    assert reference() in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_every_field_of_every_model_is_described(cls: type[model.Flow]) -> None:
    text = reference()
    for name, field in cls.model_fields.items():
        if name in ("version", "path"):  # set by the loader, not by authors
            continue
        assert f"| `{field.alias or name}` |" in text, (cls.__name__, name)


def test_every_state_kind_has_a_section() -> None:
    text = reference()
    for kind in ("menu", "input", "action", "switch", "end"):
        assert f"#### `kind: {kind}`" in text


def test_a_stale_copy_fails_the_check_until_regenerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "flow-authoring.md"
    shutil.copy(DOC, doc)
    text = doc.read_text(encoding="utf-8")
    doc.write_text(text.replace("| `on_error` |", "| `on_failure` |", 1), encoding="utf-8")
    assert main(["flows", "reference", "--check", "--doc", str(doc)]) == 1
    assert "flow reference out of date" in capsys.readouterr().err
    assert main(["flows", "reference", "--doc", str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == text
    assert main(["flows", "reference", "--check", "--doc", str(doc)]) == 0


def test_a_doc_without_markers_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "plain.md"
    doc.write_text("# no markers\n", encoding="utf-8")
    assert main(["flows", "reference", "--doc", str(doc)]) == 1
    assert capsys.readouterr().err == f"{doc}: markers not found: {BEGIN} … {END}\n"
