"""The `hotline` command: one subcommand module per concern, each with `register()`.

Channel plug-ins add their own subcommands (`hotline prompts build` is the voice
channel's); this package imports no channel.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hotline.base.config import Settings, load_settings
from hotline.base.errors import ConfigError, FlowError
from hotline.web import channels

__all__ = ["main", "settings_from_args"]

# Each module has `register(subparsers)`; its parsers set `func(args) -> int`.
SUBCOMMANDS: tuple[str, ...] = (
    "serve",
    "flows",
    "ledger",
    "billing-sim",
    "dialogues",
    "simulate",
    "actions",
)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The one place the CLI builds settings (file + environment)."""
    config: Path | None = getattr(args, "config", None)
    return load_settings(config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline", description="USSD + IVR self-service: balances by *100# or by phone."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"hotline.cli.{name.replace('-', '_')}")
        module.register(sub)
    channels.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ConfigError, FlowError) as exc:  # e.g. `hotline serve` with a broken flow
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
