"""`hotline actions`: every registered flow action, what it takes, sets and answers.

One row per action: its inputs (`args:` of an action state), the session variables it
sets with their types (what prompt placeholders such as `{balance:money}` read), and its
outcomes (`ok` goes to `next`, the others are `on:` keys, anything unnamed `on_error`).
`--json` prints the same as a list of objects for tools.

`action_specs()` is the one place that reads the registry.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["ActionSpec", "action_specs", "register", "run"]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What a flow author needs to know about one action."""

    name: str
    doc: str
    args: Sequence[str] = ()
    sets: Mapping[str, str] = field(default_factory=dict)  # variable → placeholder type
    outcomes: Sequence[str] = ()


def action_specs() -> list[ActionSpec]:
    """Every registered action, by name.

    Read from the registry's names and docstrings for now: `args:` and `on:` of the
    docstring's YAML example, the backquoted names of its `Sets …` and `Outcomes: …`
    sentences; variable types by name (the types prompt placeholders give them). When the
    registry describes its actions itself (`ACTIONS.specs()`), this returns that.
    """
    from hotline.flow.actions import ACTIONS

    types = {"balance": "money", "owed": "money", "data": "volume", "voice": "duration"}
    types |= {"sms": "int", "stale": "bool", "as_of": "time"}
    specs = []
    for name in ACTIONS.names():
        doc = ACTIONS.doc(name)
        prose, _, rest = doc.partition("```yaml")
        example = (yaml.safe_load(rest.partition("```")[0]) or {}) if rest else {}
        state: dict[str, Any] = (
            next(iter(example.values()), {}) if isinstance(example, dict) else {}
        )
        sentences = re.split(r"(?<=\.)\s+", " ".join(prose.split()))
        sets: dict[str, str] = {}
        outcomes = ["ok", *state.get("on", {}), "error"]
        for sentence in sentences:
            names = re.findall(r"`([^`]+)`", sentence)
            if sentence.startswith("Sets "):
                for var in names:
                    expanded = [f"{k}_expiry" for k in ("data", "voice", "sms")]
                    for each in expanded if var == "*_expiry" else [var]:
                        sets[each] = types.get(each, "date" if each.endswith("_expiry") else "")
            elif sentence.startswith("Outcomes:"):
                outcomes = names
        specs.append(
            ActionSpec(
                name=name,
                doc=prose.strip().split("\n\n")[0],
                args=tuple(state.get("args", {})),
                sets=sets,
                outcomes=tuple(dict.fromkeys(outcomes)),
            )
        )
    return specs


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "actions", help="list the registered flow actions: inputs, variables set, outcomes"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def _as_dict(spec: ActionSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "doc": spec.doc,
        "args": list(spec.args),
        "sets": dict(spec.sets),
        "outcomes": list(spec.outcomes),
    }


def run(args: argparse.Namespace) -> int:
    specs = action_specs()
    if args.json:
        print(json.dumps([_as_dict(s) for s in specs], indent=2, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="flow actions (kind: action)", show_lines=True)
    table.add_column("action", style="bold")
    table.add_column("args")
    table.add_column("sets")
    table.add_column("outcomes (on:)")
    table.add_column("what it does")
    for spec in specs:
        table.add_row(
            spec.name,
            "\n".join(spec.args) or "—",
            "\n".join(f"{k}: {v}" if v else k for k, v in spec.sets.items()) or "—",
            "\n".join(spec.outcomes),
            spec.doc,
        )
    Console().print(table)
    return 0
