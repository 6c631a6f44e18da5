"""The JSON Schemas in docs/schema/: fresh, strict, and agreeing with the loader."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hotline.cli import main
from hotline.flow.schema import SCHEMA_FILES, catalog_schema, flow_schema, render

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "flows" / "broken"


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


class _Loader(yaml.SafeLoader):
    """Safe YAML as an editor's YAML 1.2 server reads it: `on:` stays a string key."""


# YAML 1.1 resolves on/off/yes/no to booleans; the YAML language server (1.2) does not,
# but it does read true/false (any case) as booleans (the YAML 1.2 core schema).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_committed_schema_is_fresh(name: str) -> None:
    committed = (ROOT / "docs" / "schema" / name).read_text(encoding="utf-8")
    assert committed == render(SCHEMA_FILES[name]()), "run `hotline flows schema`"


def test_schema_check_command_spots_a_stale_file(tmp_path: Path) -> None:
    assert main(["flows", "schema", "--out", str(tmp_path)]) == 0
    assert main(["flows", "schema", "--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "flow.schema.json").write_text("{}\n", encoding="utf-8")
    assert main(["flows", "schema", "--out", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("path", sorted((ROOT / "flows").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_flow_validates(path: Path) -> None:
    _validator(flow_schema()).validate(_load(path))
    assert "$schema=../docs/schema/flow.schema.json" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted((ROOT / "prompts").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_catalog_validates(path: Path) -> None:
    _validator(catalog_schema()).validate(_load(path))
    assert "$schema=../docs/schema/prompts.schema.json" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("fixture", "complaint"),
    [
        ("unknown-field", "'promt' was unexpected"),
        ("unknown-kind", "finish"),
        ("missing-kind", "kind"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(fixture: str, complaint: str) -> None:
    errors = list(_validator(flow_schema()).iter_errors(_load(BROKEN / f"{fixture}.yaml")))
    assert errors
    assert any(complaint in e.message or complaint in str(list(e.context)) for e in errors), [
        e.message for e in errors
    ]


def test_schema_knows_the_prompt_shorthand_and_state_names() -> None:
    validator = _validator(flow_schema())
    doc = _load(BROKEN / "valid.yaml")
    assert validator.is_valid(doc)  # `prompt: main.title` (a bare key) is allowed
    doc["states"]["Bad-Name"] = doc["states"]["bye"]
    assert not validator.is_valid(doc)


def test_catalog_schema_rejects_a_bad_key_and_a_number() -> None:
    validator = _validator(catalog_schema())
    good = _load(ROOT / "prompts" / "en.yaml")
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "prompts": {"Main": {"title": "x"}}})
    assert not validator.is_valid({**good, "prompts": {"main": {"title": 5}}})


def test_schema_knows_entries() -> None:
    validator = _validator(flow_schema())
    doc = _load(BROKEN / "valid.yaml")
    good = [
        {"ussd": "*100#"},
        {"ussd": ["*100*1#", "*100*01#"], "state": "bye"},
        {"ivr": "*"},
        {"sms": ["YE", "余额"], "state": "bye"},
    ]
    assert validator.is_valid({**doc, "entries": good})
    for bad in (
        {"ussd": "*100#", "sms": "YE"},  # the loader: exactly one of ussd, ivr or sms
        {"state": "bye"},
        {"sms": []},
        {"ivr": 8610086},
        {"ussd": "*100#", "state": "Bad-Name"},
        {"ussd": "*100#", "flow": "data"},
    ):
        assert not validator.is_valid({**doc, "entries": [bad]}), bad
