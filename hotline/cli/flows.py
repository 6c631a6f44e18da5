"""`hotline flows check [PATH…]`: validate flows and prompt catalogs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hotline.errors import FlowError
from hotline.flow.check import check_files
from hotline.flow.load import flow_files
from hotline.i18n.catalog import load_catalogs

__all__ = ["register"]


def register(sub: Any) -> None:
    flows = sub.add_parser("flows", help="check (and later graph) menu flows")
    flows_sub = flows.add_subparsers(dest="flows_command", required=True, metavar="ACTION")
    check = flows_sub.add_parser("check", help="validate flows and prompts; exit 1 on problems")
    check.add_argument("paths", nargs="*", type=Path, help="flow files or directories")
    check.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    check.set_defaults(func=run_check)


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
    try:
        catalogs = load_catalogs(
            settings.prompts_dir, settings.languages, settings.default_language
        )
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    issues = check_files(files, catalogs)
    for issue in issues:
        print(issue, file=sys.stderr)
    if issues:
        print(f"{len(issues)} problem(s) in {len(files)} flow file(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(files)} flow file(s), {len(catalogs.languages)} language(s)")
    return 0
