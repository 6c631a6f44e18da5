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

__all__ = ["YAML_RULE", "Located", "explain", "load_located"]

PathKey = tuple[str | int, ...]

MAX_YAML_BYTES = 1_048_576
MAX_DEPTH = 32  # flows nest a handful of levels; a self-referencing alias never ends
MAX_NODES = 200_000  # aliases can repeat a node: "billion laughs" in a 1 MB file
YAML_RULE = "yaml"  # the `[rule]` of a file that is not valid YAML


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


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _line_above(lines: list[str], number: int) -> str:
    """The nearest line above 1-based `number` that holds YAML (not blank, not a comment)."""
    for above in reversed(lines[: max(number - 1, 0)]):
        if above.strip() and not above.lstrip().startswith("#"):
            return above
    return ""


def explain(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, str]:
    """(line, message) for a YAML syntax error: what is wrong in plain words, then the
    parser's own words. The line is where to fix it: for something left open (a quote,
    a `{`, a key without `:`) that is where it was opened, not where the parser gave up."""
    problem = exc.problem or str(exc)
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    opened = exc.context_mark.line + 1 if exc.context_mark else line
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    column = mark.column if mark else 0
    plain = ""
    if "'\\t'" in problem:
        plain = "a tab character — use spaces"
    elif "quoted scalar" in context:
        line, plain = opened, "unclosed quote: the quoted text starting on this line never ends"
    elif "flow mapping" in context or "flow sequence" in context:
        left, right = ("{", "}") if "mapping" in context else ("[", "]")
        if line == opened:
            plain = (
                f"inside `{left} … {right}`: a `,` is missing between two entries, "
                "or a value holding `:` or `,` needs quotes"
            )
        else:
            line = opened
            plain = f"unclosed `{left}`: the `{left}` opened on this line has no `{right}`"
    elif problem == "mapping values are not allowed here":
        above = _line_above(lines, line)
        if ": " in here[:column] or here[:column].rstrip().endswith(":"):
            plain = "a second `: ` on one line — put a value that holds a colon in quotes"
        elif above and _indent(here) > _indent(above):
            plain = "indentation: this line is deeper than the key above it"
        else:
            plain = "a `key:` where none can be — check the indentation of this line"
    elif problem.startswith("expected <block end>, but found"):
        found = problem.rsplit("found ", 1)[-1]
        if found == "'-'":
            plain = "a `- ` list item among `key:` lines — indent it under a key"
        elif found == "'?'":
            plain = (
                "a `key:` among `- ` list items — indent it under its item or start it with `- `"
            )
        elif found == "'<scalar>'":
            plain = "more text after a value (after a closing quote?) — quote the whole value"
        else:
            plain = "indentation: this line does not line up with the keys above it"
    elif "could not find expected ':'" in problem:
        line, plain = opened, "a line without `key:` inside a mapping (a missing `:`?)"
    elif "that cannot start any token" in problem:
        char = problem.split("'")[1] if problem.count("'") >= 2 else "this character"
        plain = f"a value cannot start with `{char}` — put the value in quotes"
    elif problem.startswith("found undefined alias"):
        plain = "`*name` refers to no `&name` anchor — put the value in quotes if `*` is text"
    elif problem == "sequence entries are not allowed here":
        plain = "a `- ` list item on the same line as its key — start the list on the next line"
    elif problem.startswith("expected the node content"):
        plain = "a stray closing bracket — put the value in quotes if it is text"
    elif context.startswith("found duplicate anchor"):
        name = context.split("'")[1] if context.count("'") >= 2 else ""
        plain = f"the anchor `&{name}` is defined twice (first on line {opened})"
    elif "<document start>" in problem:
        plain = "something after the end of the document (a stray `%` or `---` line?)"
    return line, f"{plain} (parser: {problem})" if plain else problem


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
        line, message = explain(exc, text)
        raise FlowError(name, line, f"invalid YAML: {message}", YAML_RULE) from exc
    except yaml.YAMLError as exc:
        raise FlowError(name, 1, f"invalid YAML: {exc}", YAML_RULE) from exc
    except RecursionError as exc:  # the composer recurses once per nesting level
        raise FlowError(
            name, 1, f"invalid YAML: nested deeper than {MAX_DEPTH} levels", YAML_RULE
        ) from exc
    if node is None:
        return Located(name, None, {(): 1})
    builder = _Builder(name)
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise FlowError(name, line, f"invalid YAML value: {exc.problem}") from exc
    return Located(name, data, builder.lines)
