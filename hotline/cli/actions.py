"""`hotline actions`: every registered flow action, what it takes, sets and answers.

One row per action: its inputs (`args:` of an action state), the session variables it
sets with their types (what prompt placeholders such as `{balance:money}` read), and its
outcomes (`ok` goes to `next`, the others are `on:` keys, anything unnamed `on_error`).
`--json` prints the same as a list of objects for tools.

Everything comes from the registry's own specs (`ACTIONS.specs()`), which each action
declares where it registers (`@action(name, args=…, sets=…, outcomes=…)`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hotline.flow.actions.base import ActionSpec

__all__ = ["action_specs", "register", "run"]


def action_specs() -> list[ActionSpec]:
    """Every registered action's own description (`ACTIONS.specs()`), by name."""
    from hotline.flow.actions import ACTIONS

    return ACTIONS.specs()


def _summary(spec: ActionSpec) -> str:
    """The docstring's first paragraph: what the action does, in one sentence or two."""
    return " ".join(spec.doc.split("\n\n")[0].split())


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "actions", help="list the registered flow actions: inputs, variables set, outcomes"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def _as_dict(spec: ActionSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "doc": _summary(spec),
        "args": [
            {"name": a.name, "type": a.type, "required": a.required, "doc": a.doc}
            for a in spec.args
        ],
        "sets": dict(spec.sets),
        "outcomes": list(spec.all_outcomes),
    }


def run(args: argparse.Namespace) -> int:
    specs = action_specs()
    if args.json:
        print(json.dumps([_as_dict(s) for s in specs], indent=2, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for spec in specs:
        console.print(f"[bold]{spec.name}[/bold]  {_summary(spec)}")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        takes = ", ".join(
            f"{a.name}: {a.type}{'' if a.required else ' (optional)'}" for a in spec.args
        )
        grid.add_row("args", takes or "—")
        grid.add_row("sets", ", ".join(f"{k}: {v}" for k, v in spec.sets.items()) or "—")
        grid.add_row("outcomes", ", ".join(spec.all_outcomes))
        console.print(grid)
        console.print()
    return 0
