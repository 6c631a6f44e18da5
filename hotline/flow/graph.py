"""`hotline flows graph`: a flow as a diagram (Mermaid, Graphviz DOT, or SVG via `dot`).

States are drawn by kind (menu box, input parallelogram, action subroutine, switch
diamond, end stadium), each labelled with its name and the first sentence of its prompt
in the chosen language. Edges: menu options with their key and label text, action
success (solid) and failures (dashed), switch cases, input. Each `entries` item is a flag
(`USSD *100#`, `call +8610086`, `SMS YE / 余额`) with an arrow to the state it starts at.
A diagram is built once as plain nodes and edges, then written in either syntax, so both
always agree.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from hotline.flow.model import (
    ActionState,
    EndState,
    EntrySpec,
    Flow,
    InputState,
    MenuState,
    SwitchState,
)
from hotline.i18n.catalog import Catalog

__all__ = [
    "ENTRY",
    "FORMATS",
    "Diagram",
    "Edge",
    "GraphvizError",
    "Node",
    "build",
    "to_dot",
    "to_mermaid",
    "to_svg",
]

FORMATS = ("mermaid", "dot", "svg")
_LABEL_CHARS = 40


class GraphvizError(RuntimeError):
    """Graphviz (`dot`, needed for SVG) is not installed or failed."""


@dataclass(frozen=True, slots=True)
class Node:
    """A state (`kind` is its kind), or an entry (`kind` "entry", `text` its patterns)."""

    name: str
    kind: str
    text: str
    start: bool = False


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    label: str
    error: bool = False


@dataclass(frozen=True, slots=True)
class Diagram:
    flow_id: str
    language: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def _text(catalog: Catalog, key: str) -> str:
    """A catalog sentence as plain text, placeholders shown as `{name}`; short."""
    sentence = catalog.sentences.get(key)
    if sentence is None:
        return key
    text = "".join(p if isinstance(p, str) else "{" + p[0] + "}" for p in sentence.pieces)
    text = " ".join(text.split())
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


ENTRY = "entry"
_CHANNEL_NAMES = {"ussd": "USSD", "ivr": "call", "sms": "SMS"}


def _entry_text(spec: EntrySpec) -> str:
    """`USSD *100#`, `call any number`, `SMS YE / CXYE / 余额`."""
    patterns = ["any number" if p == "*" and spec.channel == "ivr" else p for p in spec.patterns]
    return f"{_CHANNEL_NAMES[spec.channel]} {' / '.join(patterns)}"


def build(flow: Flow, catalog: Catalog) -> Diagram:
    """The flow's entries, states and transitions, with prompt text from `catalog`."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    for index, spec in enumerate(flow.entries):
        # Capitalised: never the name of a state (those are lower case).
        name = f"Entry{index}"
        nodes.append(Node(name, ENTRY, _entry_text(spec)))
        edges.append(Edge(name, spec.state or flow.start, ""))
    for name, state in flow.states.items():
        text = ""
        if isinstance(state, MenuState | InputState | EndState):
            text = _text(catalog, state.prompt[0].key) if state.prompt else ""
        elif isinstance(state, ActionState):
            text = state.action
        nodes.append(Node(name, state.type, text, start=name == flow.start))
        if isinstance(state, MenuState):
            for option in state.options:
                label = f"{option.key}. {_text(catalog, option.label)}"
                edges.append(Edge(name, option.next, label))
        elif isinstance(state, InputState):
            edges.append(Edge(name, state.next, f"digits → {state.var}"))
        elif isinstance(state, ActionState):
            edges.append(Edge(name, state.next, "ok"))
            edges.extend(
                Edge(name, target, outcome, error=True) for outcome, target in state.on.items()
            )
            edges.append(Edge(name, state.on_error, "error", error=True))
        elif isinstance(state, SwitchState):
            for case in state.cases:
                cond = case.var if case.equals is None else f"{case.var} = {case.equals}"
                edges.append(Edge(name, case.next, cond))
            edges.append(Edge(name, state.default, "default"))
    return Diagram(flow.id, catalog.language, tuple(nodes), tuple(edges))


# --- Mermaid -------------------------------------------------------------------------

_MERMAID_SHAPES = {
    ENTRY: ('>"', '"]'),
    "menu": ('["', '"]'),
    "input": ('[/"', '"/]'),
    "action": ('[["', '"]]'),
    "switch": ('{"', '"}'),
    "end": ('(["', '"])'),
}
_MERMAID_STYLE = {
    ENTRY: "fill:#fce4ec,stroke:#ad1457",
    "menu": "fill:#e3f2fd,stroke:#1565c0",
    "input": "fill:#f3e5f5,stroke:#6a1b9a",
    "action": "fill:#fff8e1,stroke:#ef6c00",
    "switch": "fill:#e8f5e9,stroke:#2e7d32",
    "end": "fill:#eeeeee,stroke:#424242",
}


def _mermaid_text(text: str) -> str:
    # Inside a quoted Mermaid label only `"` and `#` need entity escapes.
    return text.replace("#", "#35;").replace('"', "#quot;")


def to_mermaid(diagram: Diagram) -> str:
    """Mermaid `flowchart` source (renders on GitHub and in most Markdown previews)."""
    lines = [
        f"%% flow {diagram.flow_id}, prompts in {diagram.language} (hotline flows graph)",
        "flowchart TD",
    ]
    for node in diagram.nodes:
        left, right = _MERMAID_SHAPES[node.kind]
        if node.kind == ENTRY:
            body = _mermaid_text(node.text)
        else:
            body = f"<b>{node.name}</b>" + (f"<br/>{_mermaid_text(node.text)}" if node.text else "")
        lines.append(f"  {node.name}{left}{body}{right}")
    for edge in diagram.edges:
        arrow = "-.->" if edge.error else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {edge.source} {arrow}{label} {edge.target}")
    for kind, style in _MERMAID_STYLE.items():
        members = [n.name for n in diagram.nodes if n.kind == kind]
        if members:
            lines.append(f"  classDef {kind} {style}")
            lines.append(f"  class {','.join(members)} {kind}")
    starts = [n.name for n in diagram.nodes if n.start]
    if starts:
        lines.append("  classDef start stroke-width:3px")
        lines.append(f"  class {','.join(starts)} start")
    return "\n".join(lines) + "\n"


# --- Graphviz DOT ----------------------------------------------------------------------

_DOT_SHAPES = {
    ENTRY: 'shape=cds, style=filled, fillcolor="#fce4ec"',
    "menu": 'shape=box, style="rounded,filled", fillcolor="#e3f2fd"',
    "input": 'shape=parallelogram, style=filled, fillcolor="#f3e5f5"',
    "action": 'shape=component, style=filled, fillcolor="#fff8e1"',
    "switch": 'shape=diamond, style=filled, fillcolor="#e8f5e9"',
    "end": 'shape=box, style="rounded,filled,bold", fillcolor="#eeeeee", peripheries=2',
}


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(diagram: Diagram) -> str:
    """Graphviz DOT source."""
    lines = [
        f"// flow {diagram.flow_id}, prompts in {diagram.language} (hotline flows graph)",
        f"digraph {_dot_quote(diagram.flow_id)} {{",
        "  rankdir=LR;",
        '  node [fontname="Noto Sans CJK SC,Noto Sans,sans-serif", fontsize=11];',
        '  edge [fontname="Noto Sans CJK SC,Noto Sans,sans-serif", fontsize=10];',
    ]
    for node in diagram.nodes:
        label = (
            node.text if node.kind == ENTRY else node.name + (f"\n{node.text}" if node.text else "")
        )
        extra = ", penwidth=2.5" if node.start else ""
        lines.append(
            f"  {_dot_quote(node.name)} [{_DOT_SHAPES[node.kind]}{extra}, label={_dot_quote(label)}];"
        )
    for edge in diagram.edges:
        style = ', style=dashed, color="#c62828", fontcolor="#c62828"' if edge.error else ""
        label = f"label={_dot_quote(edge.label)}" if edge.label else 'color="#ad1457"'
        lines.append(f"  {_dot_quote(edge.source)} -> {_dot_quote(edge.target)} [{label}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(diagram: Diagram, dot_program: str = "dot") -> str:
    """SVG drawn by Graphviz; raises `GraphvizError` when `dot` is not installed."""
    found = shutil.which(dot_program)
    if found is None:
        raise GraphvizError(
            "--format svg needs Graphviz (`dot`); install it (Debian: apt-get install graphviz) "
            "or use --format mermaid|dot"
        )
    done = subprocess.run(
        [found, "-Tsvg"],
        input=to_dot(diagram),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise GraphvizError(f"dot failed: {done.stderr.strip()}")
    return done.stdout
