"""`hotline flows check`: every rule DESIGN.md §5 and §12 name, as located issues.

Placeholders are proved fed (`unfed-placeholder`): every `{name:type}` a shown prompt
reads must be set, with a type that shows as asked, by a reachable `input` state (its
`var` and `as:`) or action state (its spec's `sets`, or what its `args` declare). An
action's own args check runs too (`http.request`: `[action-args]`, and
`[unknown-service]` for an endpoint the configuration does not declare).

A load error stops a file (it is reported alone); otherwise all issues of all files
are collected, sorted and printed as `file:line: message`.

Screens are measured by the channels, each by its own rules: a channel plug-in registers
a `ScreenCheck` (USSD: its encoding-aware budget and configured limits), and the checker
asks every one of them about each menu option in each language. A channel that cannot
page a screen (SMS) is also a `WholeScreenCheck`: it is handed the widest screen
(`hotline.flow.widest`) of every state its entries reach, in each language
(`screen-too-long`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from hotline.base.errors import FlowError
from hotline.base.yamlsrc import Located, load_located
from hotline.flow.actions import ACTIONS, ActionRegistry
from hotline.flow.actions.base import CheckEnv
from hotline.flow.engine import ENGINE_PROMPTS
from hotline.flow.entries import entry_problems
from hotline.flow.load import load_flow
from hotline.flow.model import ActionState, Flow, InputState, MenuState, State
from hotline.flow.screen import Screen
from hotline.flow.widest import widest_screens
from hotline.i18n.catalog import Catalog, CatalogSet

__all__ = [
    "Issue",
    "ScreenCheck",
    "WholeScreenCheck",
    "check_catalogs",
    "check_entries",
    "check_files",
    "check_flow",
    "load_and_check",
]


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
    """States reachable from `start` or from the state an entry starts at."""
    seen: set[str] = set()
    todo = [flow.start, *(entry.state for entry in flow.entry_points())]
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


def _where_named(state: State, name: str, key: str) -> list[tuple[str, tuple[str | int, ...]]]:
    """Where a state names prompt `key`, as (message prefix, YAML path): a menu label on
    its option's own line (each option that uses it), any other prompt on the state."""
    if isinstance(state, MenuState) and key not in {part.key for part in state.prompt}:
        options: list[tuple[str, tuple[str | int, ...]]] = [
            (f"option {option.key!r}: ", ("states", name, "options", index, "label"))
            for index, option in enumerate(state.options)
            if option.label == key
        ]
        if options:
            return options
    return [("", ("states", name))]


class ScreenCheck(Protocol):
    """A channel's own measure of flow screens (its plug-in's `screen_checks` builds one)."""

    def option(self, line: str, catalog: Catalog) -> str | None:
        """Why the option line (`2.label`, placeholders left out) cannot be shown whole on
        one screen of this channel in the catalog's language, e.g. `94 characters, over
        the 70 …`; None when it can."""
        ...


@runtime_checkable
class WholeScreenCheck(Protocol):
    """A channel's measure of whole screens (for a channel that cannot page them)."""

    channel: str

    def screen(self, screen: Screen, catalog: Catalog) -> str | None:
        """Why this screen (at its widest, in the catalog's language) cannot be sent on
        this channel, e.g. `4 SMS parts …`; None when it can."""
        ...


def check_flow(
    flow: Flow,
    located: Located,
    catalogs: CatalogSet,
    actions: ActionRegistry = ACTIONS,
    screens: Sequence[ScreenCheck] = (),
    endpoints: Collection[str] | None = None,
) -> Iterator[Issue]:
    """Every located issue of one loaded flow; `screens` measure its menu options;
    `endpoints` are the configured `http_endpoints` (None: not known, not checked)."""
    path = located.path
    env = CheckEnv(None if endpoints is None else frozenset(endpoints))

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
            yield from _screen_issues(name, state, catalogs, screens, issue)
        if isinstance(state, ActionState) and state.action not in actions:
            yield issue(
                "unknown-action",
                f"state {name!r}: action {state.action!r} is not registered "
                f"(known: {', '.join(actions.names())})",
                "states",
                name,
                "action",
            )
        spec = actions.spec(state.action) if isinstance(state, ActionState) else None
        if isinstance(state, ActionState) and spec is not None and spec.check_args is not None:
            for problem in spec.check_args(state.args, env):
                yield issue(
                    problem.code,
                    f"state {name!r}: {problem.message}",
                    "states",
                    name,
                    "args",
                    *problem.where,
                )
        for key in state.prompt_keys():
            for catalog in catalogs.catalogs.values():
                if key not in catalog:
                    for what, named_at in _where_named(state, name, key):
                        yield issue(
                            "missing-prompt",
                            f"state {name!r}: {what}prompt {key!r} is missing in "
                            f"{catalog.language} ({catalog.path})",
                            *named_at,
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
    yield from _placeholder_issues(flow, reachable, catalogs, actions, issue)
    yield from _whole_screen_issues(flow, catalogs, screens, issue)


def _whole_screen_issues(
    flow: Flow,
    catalogs: CatalogSet,
    screens: Sequence[ScreenCheck],
    issue: Callable[..., Issue],
) -> Iterator[Issue]:
    """`screen-too-long`: the widest screen of every state a whole-screen channel's
    entries reach, in every language (a missing prompt is `missing-prompt`'s)."""
    for check in screens:
        if not isinstance(check, WholeScreenCheck):
            continue
        for catalog in catalogs.catalogs.values():
            for screen in widest_screens(flow, check.channel, catalog):
                try:
                    reason = check.screen(screen, catalog)
                except KeyError:
                    continue  # a prompt missing in this language: reported as such
                if reason is not None:
                    yield issue(
                        "screen-too-long",
                        f"state {screen.state!r} in {catalog.language} by {check.channel} "
                        f"is {reason}",
                        "states",
                        screen.state,
                    )


#: Which placeholder types a variable of each type feeds (besides its own type).
_ALSO_SHOWS = {"digits": {"text"}}


def _fed(flow: Flow, reachable: set[str], actions: ActionRegistry) -> dict[str, dict[str, str]]:
    """Variable → {type it is set as → who sets it}, over the reachable states."""
    fed: dict[str, dict[str, str]] = {}
    for name in sorted(reachable):
        state = flow.states[name]
        if isinstance(state, InputState):
            kind: str = "secret" if state.secret else state.as_
            fed.setdefault(state.var, {}).setdefault(kind, f"input state {name!r}")
        elif isinstance(state, ActionState):
            spec = actions.spec(state.action)
            if spec is None:
                continue  # `unknown-action` says so
            for var, kind in spec.sets_for(state.args).items():
                fed.setdefault(var, {}).setdefault(kind, f"action {state.action!r} ({name!r})")
    return fed


def _placeholder_issues(
    flow: Flow,
    reachable: set[str],
    catalogs: CatalogSet,
    actions: ActionRegistry,
    issue: Callable[..., Issue],
) -> Iterator[Issue]:
    """`unfed-placeholder`: a shown sentence reads a variable nothing reachable sets as
    its type. Option labels and an input's `error` are shown without values."""
    fed = _fed(flow, reachable, actions)
    for name in sorted(reachable):
        state = flow.states[name]
        reads: list[tuple[str, bool, tuple[str | int, ...]]] = []  # key, gets values, where
        prompt = getattr(state, "prompt", ())
        for index, part in enumerate(prompt):
            reads.append((part.key, True, ("states", name, "prompt", index)))
        if isinstance(state, MenuState):
            for index, option in enumerate(state.options):
                reads.append((option.label, False, ("states", name, "options", index, "label")))
        if isinstance(state, InputState):
            reads.append((state.error, False, ("states", name, "error")))
        for key, gets_values, where in reads:
            for var, kind in sorted(catalogs.placeholder_types(key).items()):
                reason = _unfed(var, kind, fed.get(var, {}), gets_values)
                if reason is not None:
                    yield issue(
                        "unfed-placeholder",
                        f"state {name!r}: prompt {key!r} reads {{{var}:{kind}}}, {reason}",
                        *where,
                    )


def _unfed(var: str, kind: str, setters: dict[str, str], gets_values: bool) -> str | None:
    """Why `{var:kind}` would show empty; None when some reachable state feeds it."""
    if not gets_values:
        return "but this prompt is shown without values"
    if any(kind == have or kind in _ALSO_SHOWS.get(have, ()) for have in setters):
        return None
    if not setters:
        return f"but no reachable state sets {var!r}"
    if set(setters) == {"secret"}:
        return f"but {setters['secret']} is secret: its value is never shown"
    have, who = next((k, w) for k, w in setters.items() if k != "secret")
    return f"but {who} sets it as {have}"


def _screen_issues(
    name: str,
    state: MenuState,
    catalogs: CatalogSet,
    screens: Sequence[ScreenCheck],
    issue: Callable[..., Issue],
) -> Iterator[Issue]:
    """`option-too-long`: every option line, in every language, measured by every channel."""
    for index, option in enumerate(state.options):
        for catalog in catalogs.catalogs.values():
            sentence = catalog.sentences.get(option.label)
            if sentence is None:
                continue  # `missing-prompt` says so
            label = "".join(p for p in sentence.pieces if isinstance(p, str))
            for screen in screens:
                reason = screen.option(f"{option.key}.{label}", catalog)
                if reason is not None:
                    yield issue(
                        "option-too-long",
                        f"state {name!r}: option {option.key!r} in {catalog.language} is {reason}",
                        "states",
                        name,
                        "options",
                        index,
                    )


def check_entries(flows: list[Flow]) -> Iterator[Issue]:
    """Entries across all flows (DESIGN.md §12): one claim per entry (`entry-duplicate`),
    known states (`entry-state`), patterns that can match (`entry-pattern`). Startup
    refuses the same through `EntryTable.from_flows`."""
    for problem in entry_problems(flows):
        yield Issue(problem.path, problem.line, problem.code, problem.message)


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
    screens: Sequence[ScreenCheck] = (),
    endpoints: Collection[str] | None = None,
) -> tuple[list[Flow], list[Issue]]:
    """Load flow files and check them (and the catalogs) by every rule; load errors are
    issues too. `required` and `screens` come from the channels (prompt keys they say by
    themselves, their screen measures); `endpoints` from the configuration (the declared
    `http_endpoints`). Returns the flows that loaded, so a reload installs exactly what
    passed."""
    issues: list[Issue] = list(check_catalogs(catalogs, required))
    flows: list[Flow] = []
    ids: dict[str, str] = {}
    for file in files:
        try:
            flow = load_flow(file)
        except FlowError as exc:
            issues.append(Issue(exc.path, exc.line, exc.code, exc.message))
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
        issues.extend(check_flow(flow, located, catalogs, actions, screens, endpoints))
    issues.extend(check_entries(flows))
    return flows, sorted(set(issues))


def check_files(
    files: list[Path],
    catalogs: CatalogSet,
    actions: ActionRegistry = ACTIONS,
    required: tuple[str, ...] = (),
    screens: Sequence[ScreenCheck] = (),
    endpoints: Collection[str] | None = None,
) -> list[Issue]:
    """Check flow files against the catalogs; load errors are issues too."""
    return load_and_check(files, catalogs, actions, required, screens, endpoints)[1]
