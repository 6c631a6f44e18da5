"""`hotline flows check`: every rule DESIGN.md §5 names, as located issues.

A load error stops a file (it is reported alone); otherwise all issues of all files
are collected, sorted and printed as `file:line: message`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hotline.base.errors import FlowError
from hotline.base.yamlsrc import Located, load_located
from hotline.flow.actions import ACTIONS, ActionRegistry
from hotline.flow.engine import ENGINE_PROMPTS
from hotline.flow.load import load_flow
from hotline.flow.model import ActionState, Flow, MenuState
from hotline.i18n.catalog import CatalogSet

__all__ = ["Issue", "check_catalogs", "check_files", "check_flow", "load_and_check"]

#: The tightest screen a flow must fit: one option line in UCS-2 (any Chinese) or GSM-7.
USSD_MAX_UCS2 = 80
USSD_MAX_GSM7 = 182


@dataclass(frozen=True, slots=True, order=True)
class Issue:
    path: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message} [{self.code}]"


def _field_path(field_name: str) -> tuple[str | int, ...]:
    """`options[1].next` → ("options", 1, "next"): the YAML path of a `targets()` name."""
    path: list[str | int] = []
    for part in field_name.split("."):
        head, _, index = part.partition("[")
        path.append(head)
        if index:
            path.append(int(index.rstrip("]")))
    return tuple(path)


def _reachable(flow: Flow) -> set[str]:
    seen: set[str] = set()
    todo = [flow.start]
    while todo:
        name = todo.pop()
        if name in seen or name not in flow.states:
            continue
        seen.add(name)
        todo.extend(flow.states[name].targets().values())
    return seen


def _loops_without_wait(flow: Flow) -> Iterator[list[str]]:
    """Cycles made only of action/switch states: they would spin without the subscriber."""
    graph = {
        name: [t for t in state.targets().values() if t in flow.states and not flow.states[t].waits]
        for name, state in flow.states.items()
        if not state.waits
    }
    color: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(node: str, path: list[str]) -> Iterator[list[str]]:
        color[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if color.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    yield cycle
            elif color.get(nxt) is None:
                yield from visit(nxt, path)
        path.pop()
        color[node] = 2

    for start in graph:
        if color.get(start) is None:
            yield from visit(start, [])


def _option_cost(text: str) -> tuple[int, int]:
    """(UTF-16 units, limit) of one option line; any non-ASCII text is budgeted as UCS-2."""
    if all(ord(ch) < 128 for ch in text):
        return len(text), USSD_MAX_GSM7
    return len(text.encode("utf-16-le")) // 2, USSD_MAX_UCS2


def check_flow(
    flow: Flow, located: Located, catalogs: CatalogSet, actions: ActionRegistry = ACTIONS
) -> Iterator[Issue]:
    """Every located issue of one loaded flow."""
    path = located.path

    def issue(code: str, message: str, *where: str | int) -> Issue:
        return Issue(path, located.line_of(*where), code, message)

    if flow.start not in flow.states:
        yield issue("unknown-start", f"start state {flow.start!r} does not exist", "start")
    nav = flow.navigation
    reserved = {nav.back: "back", nav.home: "home", nav.more: "more", nav.repeat: "repeat"}
    for name, state in flow.states.items():
        for field_name, target in state.targets().items():
            if target not in flow.states:
                yield issue(
                    "unknown-state",
                    f"state {name!r}: {field_name} names unknown state {target!r}",
                    "states",
                    name,
                    *_field_path(field_name),
                )
        if isinstance(state, MenuState):
            seen: dict[str, int] = {}
            for index, option in enumerate(state.options):
                where = ("states", name, "options", index)
                if option.key in seen:
                    yield issue(
                        "duplicate-option",
                        f"state {name!r}: option key {option.key!r} is used twice",
                        *where,
                    )
                seen[option.key] = index
                # The start state has no history, so its options may use the back key
                # (the voice menu's "0 for an agent"); page navigation still wins there.
                if option.key in reserved and not (name == flow.start and option.key == nav.back):
                    yield issue(
                        "reserved-key",
                        f"state {name!r}: option key {option.key!r} is the "
                        f"{reserved[option.key]} key",
                        *where,
                    )
                for catalog in catalogs.catalogs.values():
                    sentence = catalog.sentences.get(option.label)
                    if sentence is None:
                        continue
                    text = (
                        f"{option.key}.{''.join(p for p in sentence.pieces if isinstance(p, str))}"
                    )
                    cost, limit = _option_cost(text)
                    if cost > limit:
                        yield issue(
                            "option-too-long",
                            f"state {name!r}: option {option.key!r} in {catalog.language} is "
                            f"{cost} characters, over the {limit}-character screen",
                            *where,
                        )
        if isinstance(state, ActionState) and state.action not in actions:
            yield issue(
                "unknown-action",
                f"state {name!r}: action {state.action!r} is not registered "
                f"(known: {', '.join(actions.names())})",
                "states",
                name,
                "action",
            )
        for key in state.prompt_keys():
            for catalog in catalogs.catalogs.values():
                if key not in catalog:
                    yield issue(
                        "missing-prompt",
                        f"state {name!r}: prompt {key!r} is missing in {catalog.language} "
                        f"({catalog.path})",
                        "states",
                        name,
                    )
    # With no valid start every state is "unreachable": one unknown-start issue says it all.
    reachable = _reachable(flow) if flow.start in flow.states else set(flow.states)
    for name in flow.states:
        if name not in reachable:
            yield issue("unreachable", f"state {name!r} can never be reached", "states", name)
    for cycle in _loops_without_wait(flow):
        loop = " → ".join([*cycle, cycle[0]])
        yield issue(
            "loop-without-wait",
            f"states loop without waiting for input: {loop}",
            "states",
            cycle[0],
        )


def check_catalogs(catalogs: CatalogSet, required: tuple[str, ...] = ()) -> Iterator[Issue]:
    """Placeholders must agree across languages; the prompts the engine and the channels
    say by themselves (`required`) must exist in every language."""
    reference = catalogs[catalogs.default]
    for catalog in catalogs.catalogs.values():
        for key in (*ENGINE_PROMPTS, *required):
            if key not in catalog:
                yield Issue(catalog.path, 1, "missing-prompt", f"prompt {key!r} is required")
        for key, sentence in catalog.sentences.items():
            other = reference.sentences.get(key)
            if other is None:
                continue
            if other.placeholders != sentence.placeholders:
                yield Issue(
                    catalog.path,
                    sentence.line,
                    "placeholder-mismatch",
                    f"prompt {key!r} has placeholders {sentence.placeholders} but "
                    f"{reference.language} has {other.placeholders}",
                )


def load_and_check(
    files: list[Path],
    catalogs: CatalogSet,
    actions: ActionRegistry = ACTIONS,
    required: tuple[str, ...] = (),
) -> tuple[list[Flow], list[Issue]]:
    """Load flow files and check them (and the catalogs) by every rule; load errors are
    issues too. Returns the flows that loaded, so a reload installs exactly what passed."""
    issues: list[Issue] = list(check_catalogs(catalogs, required))
    flows: list[Flow] = []
    ids: dict[str, str] = {}
    for file in files:
        try:
            flow = load_flow(file)
        except FlowError as exc:
            issues.append(Issue(exc.path, exc.line, "load", exc.message))
            continue
        flows.append(flow)
        located = load_located(file)
        if flow.id in ids:
            issues.append(
                Issue(
                    located.path,
                    located.line_of("id"),
                    "duplicate-flow",
                    f"flow id {flow.id!r} is also used by {ids[flow.id]}",
                )
            )
        ids[flow.id] = located.path
        issues.extend(check_flow(flow, located, catalogs, actions))
    return flows, sorted(set(issues))


def check_files(
    files: list[Path],
    catalogs: CatalogSet,
    actions: ActionRegistry = ACTIONS,
    required: tuple[str, ...] = (),
) -> list[Issue]:
    """Check flow files against the catalogs; load errors are issues too."""
    return load_and_check(files, catalogs, actions, required)[1]
