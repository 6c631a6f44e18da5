"""`hotline flows check|graph|entries|schema|reference`: validate, draw, and describe flows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hotline.base.errors import FlowError
from hotline.flow.check import check_files
from hotline.flow.entries import EntryTable
from hotline.flow.graph import ENTRY, FORMATS, GraphvizError, build, to_dot, to_mermaid, to_svg
from hotline.flow.load import flow_files, load_flow
from hotline.flow.schema import SCHEMA_FILES, render, write_schemas
from hotline.i18n.catalog import inspect_catalogs, load_catalogs
from hotline.web import channels

__all__ = ["register"]


def register(sub: Any) -> None:
    flows = sub.add_parser("flows", help="check, graph, entries and schema of menu flows")
    flows_sub = flows.add_subparsers(dest="flows_command", required=True, metavar="ACTION")
    check = flows_sub.add_parser("check", help="validate flows and prompts; exit 1 on problems")
    check.add_argument("paths", nargs="*", type=Path, help="flow files or directories")
    check.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    check.set_defaults(func=run_check)

    graph = flows_sub.add_parser("graph", help="draw a flow as Mermaid, Graphviz DOT or SVG")
    graph.add_argument("flow", nargs="?", help="flow id or file (default: the default flow)")
    graph.add_argument("--format", choices=FORMATS, default="mermaid")
    graph.add_argument("--language", help="prompt language for labels (default: the default)")
    graph.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    graph.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    graph.set_defaults(func=run_graph)

    entries = flows_sub.add_parser(
        "entries", help="where contacts enter the flows, as a Markdown table"
    )
    entries.add_argument("paths", nargs="*", type=Path, help="flow files or directories")
    entries.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    entries.set_defaults(func=run_entries)

    schema = flows_sub.add_parser("schema", help="write the JSON Schemas for editors")
    schema.add_argument(
        "--out", type=Path, default=Path("docs/schema"), help="directory (default: docs/schema)"
    )
    schema.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from a fresh generation"
    )
    schema.set_defaults(func=run_schema)

    ref = flows_sub.add_parser(
        "reference", help="write the state/field reference into docs/flow-authoring.md"
    )
    ref.add_argument(
        "--doc",
        type=Path,
        default=Path("docs/flow-authoring.md"),
        help="the document holding the reference markers (default: docs/flow-authoring.md)",
    )
    ref.add_argument(
        "--check", action="store_true", help="exit 1 if the doc differs from a fresh generation"
    )
    ref.set_defaults(func=run_reference)


def _expand(paths: list[Path], default: Path) -> list[Path]:
    found: list[Path] = []
    for path in paths or [default]:
        found.extend(flow_files(path) if path.is_dir() else [path])
    return found


def run_check(args: argparse.Namespace) -> int:
    from hotline.cli import settings_from_args

    settings = settings_from_args(args)
    files = _expand(list(args.paths), settings.flows_dir)
    if not files:
        print(f"no flow files found in {settings.flows_dir}", file=sys.stderr)
        return 1
    catalogs, problems = inspect_catalogs(
        settings.prompts_dir, settings.languages, settings.default_language
    )
    if catalogs is None:
        # Flows are checked against the sentences, so the prompt files come first.
        for problem in problems:
            print(f"{problem} [{problem.code}]", file=sys.stderr)
        print(
            f"{len(problems)} problem(s) in {len(settings.languages)} prompt file(s); "
            "the flows are checked once the prompts load",
            file=sys.stderr,
        )
        return 1
    mounted = channels.selected(settings)
    issues = check_files(
        files,
        catalogs,
        required=channels.prompt_keys(mounted),
        screens=channels.screen_checks(mounted, catalogs, settings),
        endpoints=settings.http_endpoints.keys(),
    )
    for issue in issues:
        print(issue, file=sys.stderr)
    if issues:
        print(f"{len(issues)} problem(s) in {len(files)} flow file(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(files)} flow file(s), {len(catalogs.languages)} language(s)")
    return 0


def _flow_file(flow: str | None, flows_dir: Path, default: str) -> Path:
    """A flow argument is a file path, or an id looked up in the flows directory."""
    if flow is None:
        return flows_dir / f"{default}.yaml"
    path = Path(flow)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return flows_dir / f"{flow}.yaml"


def run_graph(args: argparse.Namespace) -> int:
    from hotline.cli import settings_from_args

    settings = settings_from_args(args)
    language = args.language or settings.default_language
    if language not in settings.languages:
        print(
            f"unknown language {language!r} (configured: {', '.join(settings.languages)})",
            file=sys.stderr,
        )
        return 2
    file = _flow_file(args.flow, settings.flows_dir, settings.default_flow)
    try:
        flow = load_flow(file)
        catalogs = load_catalogs(
            settings.prompts_dir, settings.languages, settings.default_language
        )
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    diagram = build(flow, catalogs[language])
    try:
        text = {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg}[args.format](diagram)
    except GraphvizError as exc:
        print(f"hotline flows graph: {exc}", file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(
                f"hotline flows graph: cannot write {args.output}: {exc.strerror}", file=sys.stderr
            )
            return 1
        states = sum(node.kind != ENTRY for node in diagram.nodes)
        print(f"wrote {args.output} ({args.format}, {states} states)")
    return 0


_CHANNEL_TITLES = {"ussd": "USSD code", "ivr": "called number", "sms": "SMS keyword"}


def entries_markdown(table: EntryTable) -> str:
    """The table's rows as Markdown; aliases (consecutive rows of one channel, flow and
    state) share a row."""
    grouped: list[tuple[str, list[str], str, str]] = []
    for channel, pattern, flow_id, state in table.rows():
        if grouped and grouped[-1][0] == channel and grouped[-1][2:] == (flow_id, state):
            grouped[-1][1].append(pattern)
        else:
            grouped.append((channel, [pattern], flow_id, state))
    lines = ["| Channel | Entry | Flow | Starts at |", "|---|---|---|---|"]
    for channel, patterns, flow_id, state in grouped:
        shown = ", ".join("`" + p.replace("|", "\\|") + "`" for p in patterns)
        lines.append(f"| {_CHANNEL_TITLES[channel]} | {shown} | {flow_id} | {state} |")
    return "\n".join(lines) + "\n"


def run_entries(args: argparse.Namespace) -> int:
    from hotline.cli import settings_from_args

    settings = settings_from_args(args)
    files = _expand(list(args.paths), settings.flows_dir)
    try:
        table = EntryTable.from_flows(load_flow(file) for file in files)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    sys.stdout.write(entries_markdown(table))
    return 0


def run_schema(args: argparse.Namespace) -> int:
    out: Path = args.out
    if args.check:
        stale = [
            name
            for name, build_schema in SCHEMA_FILES.items()
            if not (out / name).exists()
            or (out / name).read_text(encoding="utf-8") != render(build_schema())
        ]
        for name in stale:
            print(f"{out / name}: out of date (run `hotline flows schema`)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas(out):
        print(f"wrote {path}")
    return 0


def run_reference(args: argparse.Namespace) -> int:
    from hotline.flow import reference

    doc: Path = args.doc
    try:
        text = doc.read_text(encoding="utf-8")
        fresh = reference.splice(text, reference.reference())
    except OSError as exc:
        print(f"hotline flows reference: cannot read {doc}: {exc.strerror}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"{doc}: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if fresh != text:
            print(
                f"{doc}: flow reference out of date (run `hotline flows reference`)",
                file=sys.stderr,
            )
            return 1
        return 0
    if fresh != text:
        doc.write_text(fresh, encoding="utf-8")
        print(f"wrote the flow reference into {doc}")
    else:
        print(f"{doc}: flow reference up to date")
    return 0
