r"""The dialogue file format (`dialogues/*.yaml`): a subscriber's conversation as data.

```yaml
name: Main balance, in Chinese
channel: ussd              # ussd (default) | ivr
as: "+8613800138000"       # the subscriber's number
language: zh-CN            # the language the subscriber hears (in-process runs)
steps:
  - dial: "*100#"          # a new session (fresh gateway session id)
    expect: 话费查询        # text the screen contains …
  - press: "1"
    expect: /余额为12\.50元/ # … or, between slashes, a regular expression
    expect_end: true       # the session ends here (false: it must continue)
```

Every `dial` starts a new session, so one file can check that a choice (a language)
survives to the next call. `server` holds settings for the in-process server only
(e.g. a balance provider that fails), so a dialogue can reach error states.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hotline.base.errors import FlowError
from hotline.base.yamlsrc import load_located
from hotline.flow.load import validation_message

__all__ = ["Dialogue", "Expectation", "Step", "dialogue_files", "load_dialogue"]

_KEYS = r"^[0-9*#]{1,20}$"


class Expectation(BaseModel):
    """Text the screen must contain, or (written `/…/`) a pattern it must match."""

    model_config = ConfigDict(frozen=True)

    text: str
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, raw: str) -> Expectation:
        if len(raw) >= 2 and raw.startswith("/") and raw.endswith("/"):
            try:
                return cls(text=raw, pattern=re.compile(raw[1:-1]))
            except re.error as exc:
                raise ValueError(f"pattern {raw} does not compile: {exc}") from exc
        return cls(text=raw)

    def holds(self, screen: str) -> bool:
        if self.pattern is not None:
            return self.pattern.search(screen) is not None
        return self.text in screen


def _listed(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str | int):
        return [str(value)]
    return value


class Step(BaseModel):
    """Dial (a new session) or press keys; then check the answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dial: Annotated[str, Field(pattern=r"^\+?[0-9*#]{1,20}$")] | None = Field(
        None, description="USSD: the code (*100#); call: the number called"
    )
    press: Annotated[str, Field(pattern=_KEYS)] | None = None
    expect: tuple[Expectation, ...] = ()
    expect_not: tuple[Expectation, ...] = Field((), description="text that must NOT appear")
    expect_end: bool | None = Field(None, description="true: the session ends; false: it goes on")

    @field_validator("dial", "press", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("expect", "expect_not", mode="before")
    @classmethod
    def _expectations(cls, value: Any) -> Any:
        items = _listed(value)
        if not isinstance(items, list):
            raise ValueError("expect is a text, a /pattern/, or a list of them")
        return [Expectation.parse(str(item)) for item in items]

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        if (self.dial is None) == (self.press is None):
            raise ValueError("a step has exactly one of `dial` or `press`")
        return self

    def describe(self) -> str:
        return f"dial {self.dial}" if self.dial is not None else f"press {self.press}"


class Dialogue(BaseModel):
    """One scripted conversation of one subscriber."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1)
    channel: Literal["ussd", "ivr"] = "ussd"
    msisdn: str = Field(alias="as", pattern=r"^\+?[0-9]{3,20}$")
    language: str | None = None
    server: dict[str, Any] = Field(default_factory=dict)
    steps: tuple[Step, ...] = Field(min_length=1)
    path: str = Field("", exclude=True)
    step_lines: tuple[int, ...] = Field((), exclude=True)

    @field_validator("msisdn", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _starts_with_dial(self) -> Dialogue:
        if self.steps[0].dial is None:
            raise ValueError("steps: the first step must `dial`")
        return self


def dialogue_files(paths: list[Path]) -> list[Path]:
    """Files named directly, plus `*.yaml` of directories, in a stable order."""
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return found


def _keys_as_written(file: Path, data: dict[str, Any]) -> None:
    """Put back `press`/`dial` as typed: YAML reads `press: 00` as the number 0.

    Keys are text on a keypad ("00" is home, "0" is back), so the raw scalar wins.
    """
    root = yaml.compose(file.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    steps = next(
        (v for k, v in getattr(root, "value", []) if getattr(k, "value", None) == "steps"), None
    )
    if not isinstance(steps, yaml.SequenceNode) or not isinstance(data.get("steps"), list):
        return
    for node, step in zip(steps.value, data["steps"], strict=False):
        if not isinstance(node, yaml.MappingNode) or not isinstance(step, dict):
            continue
        for key_node, value_node in node.value:
            if key_node.value in ("press", "dial") and isinstance(value_node, yaml.ScalarNode):
                step[key_node.value] = value_node.value


def load_dialogue(file: Path) -> Dialogue:
    """Load one dialogue; a problem is a `FlowError` with its `file:line`."""
    located = load_located(file)
    if not isinstance(located.data, dict):
        raise FlowError(located.path, 1, "a dialogue is a mapping with name, as and steps")
    _keys_as_written(file, located.data)
    try:
        dialogue = Dialogue.model_validate(located.data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
        raise FlowError(located.path, located.line_of(*loc), validation_message(error)) from exc
    lines = tuple(located.line_of("steps", i) for i in range(len(dialogue.steps)))
    return dialogue.model_copy(update={"path": located.path, "step_lines": lines})
