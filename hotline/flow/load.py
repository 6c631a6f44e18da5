"""Staged flow loading: read + size check, YAML with positions, typed validation.

Every failure is a `FlowError` with the `file:line` of the offending value, so
`hotline flows check` and startup say exactly where to look.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from hotline.base.errors import FlowError
from hotline.base.yamlsrc import Located, load_located
from hotline.flow.model import EntrySpec, Flow

__all__ = ["flow_files", "load_flow", "validation_message"]


def flow_files(directory: Path) -> list[Path]:
    """The flow files of a directory, in a stable order."""
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


_KINDS = ("menu", "input", "action", "switch", "end")


def _loc_path(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """The part of a pydantic error location that exists in the YAML document.

    pydantic inserts validator tags (`function-before[...]`) and the discriminator value
    after a state name (`states.main.menu.options`); neither is in the file.
    """
    path = [p for p in loc if isinstance(p, int) or not str(p).startswith("function-")]
    if len(path) >= 3 and path[0] == "states" and path[2] in _KINDS:
        del path[2]
    return tuple(path)


def validation_message(error: ErrorDetails) -> str:
    loc = ".".join(str(p) for p in _loc_path(error["loc"]))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "union_tag_invalid":
        message = "unknown state kind (expected menu, input, action, switch or end)"
    elif error["type"] == "union_tag_not_found":
        message = "missing `kind` (menu, input, action, switch or end)"
    return f"{loc}: {message}" if loc else message


def _line_of(located: Located, loc: tuple[Any, ...]) -> int:
    return located.line_of(*_loc_path(loc))


def load_flow(file: Path) -> Flow:
    """Load one flow file; raises `FlowError` at the first structural problem."""
    located = load_located(file)
    if not isinstance(located.data, dict):
        raise FlowError(located.path, 1, "a flow is a mapping with spec, id, start and states")
    try:
        flow = Flow.model_validate(located.data)
    except ValidationError as exc:
        # A misspelt field shows up both as unknown and as a missing required one;
        # the unknown one names what the author actually wrote.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        raise FlowError(
            located.path, _line_of(located, first["loc"]), validation_message(first)
        ) from exc
    version = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    entries = tuple(_with_lines(spec, located, index) for index, spec in enumerate(flow.entries))
    return flow.model_copy(update={"version": version, "path": located.path, "entries": entries})


def _with_lines(spec: EntrySpec, located: Located, index: int) -> EntrySpec:
    """The entry with the line of each of its patterns (one pattern or a list of aliases)."""
    lines = tuple(
        located.line_of("entries", index, spec.channel, alias)
        for alias in range(len(spec.patterns))
    )
    return spec.model_copy(update={"lines": lines})
