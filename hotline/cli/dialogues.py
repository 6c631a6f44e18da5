"""`hotline dialogues run [PATH…] [--url URL]`: play scripted conversations, report."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import ValidationError
from rich.console import Console

from hotline.base.config import Settings
from hotline.base.errors import ConfigError, FlowError
from hotline.dialogue.report import print_result, print_summary
from hotline.dialogue.runner import DialogueResult, run_dialogue
from hotline.dialogue.script import Dialogue, dialogue_files, load_dialogue
from hotline.dialogue.server import in_process

__all__ = ["register", "run_all"]


def register(sub: Any) -> None:
    dialogues = sub.add_parser("dialogues", help="scripted conversations against the service")
    dialogues_sub = dialogues.add_subparsers(
        dest="dialogues_command", required=True, metavar="ACTION"
    )
    run = dialogues_sub.add_parser("run", help="run dialogue scripts; exit 1 if any fails")
    run.add_argument(
        "paths", nargs="*", type=Path, help="files or directories (default: dialogues/)"
    )
    run.add_argument("--url", help="a running hotline (default: start one in this process)")
    run.add_argument("-v", "--verbose", action="store_true", help="show every step")
    run.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    run.set_defaults(func=_run)


async def run_all(
    dialogues: list[Dialogue], settings: Settings, url: str | None = None
) -> list[DialogueResult]:
    """Each dialogue against `url`, or against its own fresh in-process server."""
    results = []
    async with aiohttp.ClientSession() as http:
        for dialogue in dialogues:
            if url is not None:
                if dialogue.server:
                    result = DialogueResult(dialogue, skipped="needs in-process `server` settings")
                else:
                    result = await run_dialogue(dialogue, url, http)
            else:
                result = await _run_in_process(dialogue, settings, http)
            results.append(result)
    return results


async def _run_in_process(
    dialogue: Dialogue, settings: Settings, http: aiohttp.ClientSession
) -> DialogueResult:
    overrides = dict(dialogue.server)
    if dialogue.language:
        if dialogue.language not in settings.languages:
            configured = ", ".join(settings.languages)
            return DialogueResult(
                dialogue, failure=f"language {dialogue.language!r} is not configured ({configured})"
            )
        overrides["default_language"] = dialogue.language
    try:
        async with in_process(settings, overrides) as server:
            return await run_dialogue(dialogue, server.url, http, server.speech_text())
    except (FlowError, ConfigError, ValidationError, OSError) as exc:
        reason = str(exc).splitlines()[0]
        return DialogueResult(dialogue, failure=f"the in-process hotline did not start: {reason}")


def _run(args: argparse.Namespace) -> int:
    from hotline.cli import settings_from_args

    settings = settings_from_args(args)
    files = dialogue_files(list(args.paths) or [Path("dialogues")])
    if not files:
        print("no dialogue files found", file=sys.stderr)
        return 1
    try:
        dialogues = [load_dialogue(f) for f in files]
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    console = Console(highlight=False, soft_wrap=True)
    if args.url is None:
        # The embedded servers' operator warnings (in-process sessions) are noise here.
        logging.getLogger("hotline").setLevel(logging.ERROR)
    results = asyncio.run(run_all(dialogues, settings, args.url))
    for result in results:
        print_result(console, result, verbose=args.verbose)
    print_summary(console, results)
    return 0 if all(r.ok or r.skipped for r in results) else 1
