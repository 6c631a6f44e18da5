"""YAML loading that remembers where every value came from, for `file:line` errors.

PyYAML's `safe_load` drops positions; composing the node graph first keeps them. We
build plain Python data (safe types only) plus a map from each value's path to its
1-based line. Duplicate mapping keys are an error here, not a silent overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hotline.base.errors import FlowError

__all__ = ["Located", "load_located"]

PathKey = tuple[str | int, ...]

MAX_YAML_BYTES = 1_048_576
MAX_DEPTH = 32  # flows nest a handful of levels; a self-referencing alias never ends
MAX_NODES = 200_000  # aliases can repeat a node: "billion laughs" in a 1 MB file


@dataclass(frozen=True, slots=True)
class Located:
    """Data loaded from a YAML file with the line of every path in it."""

    path: str
    data: Any
    lines: dict[PathKey, int]

    def line_of(self, *where: str | int) -> int:
        """The line of the deepest known prefix of `where` (1 if none)."""
        key: PathKey = tuple(where)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)


class _Builder:
    """Plain data from a node graph, with the line of every path and bounded expansion."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[PathKey, int] = {}
        self.nodes = 0

    def build(self, node: yaml.Node, where: PathKey) -> Any:
        self.nodes += 1
        if len(where) > MAX_DEPTH or self.nodes > MAX_NODES:
            raise FlowError(
                self.path,
                node.start_mark.line + 1,
                f"nested deeper than {MAX_DEPTH} levels or more than {MAX_NODES} values "
                "(a recursive or much-repeated alias?)",
            )
        self.lines.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise FlowError(self.path, line, "mapping keys must be text")
                # Keys stay the text as written: YAML 1.1 would turn `on:` or `no:` into booleans.
                name = key_node.value
                if name in out:
                    raise FlowError(self.path, line, f"duplicate key {name!r}")
                self.lines[(*where, name)] = line
                out[name] = self.build(value_node, (*where, name))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*where, index)) for index, item in enumerate(node.value)]
        # Scalars: let SafeConstructor decide the type (int, bool, null, str …).
        return yaml.SafeLoader("").construct_object(node, deep=True)  # type: ignore[no-untyped-call]


def load_located(file: Path) -> Located:
    """Read and compose one YAML file; malformed YAML raises `FlowError` with its line."""
    name = str(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise FlowError(name, 1, f"cannot read: {exc.strerror}") from exc
    if len(raw) > MAX_YAML_BYTES:
        raise FlowError(name, 1, f"file is larger than {MAX_YAML_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FlowError(name, 1, "file is not UTF-8") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise FlowError(name, line, f"invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise FlowError(name, 1, f"invalid YAML: {exc}") from exc
    except RecursionError as exc:  # the composer recurses once per nesting level
        raise FlowError(name, 1, f"invalid YAML: nested deeper than {MAX_DEPTH} levels") from exc
    if node is None:
        return Located(name, None, {(): 1})
    builder = _Builder(name)
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise FlowError(name, line, f"invalid YAML value: {exc.problem}") from exc
    return Located(name, data, builder.lines)
