"""`hotline prompts build`: render every static voice prompt of every flow and language.

The voice channel lives in `ivr/`; like the app factory, this command imports it only
when it runs, so `hotline` itself does not depend on a channel at import time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from hotline.base.errors import FlowError

__all__ = ["register"]


def register(sub: Any) -> None:
    prompts = sub.add_parser("prompts", help="voice prompts (speech clips)")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    build = prompts_sub.add_parser(
        "build", help="render every static voice prompt ahead of time (into ivr.audio_dir)"
    )
    build.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    build.add_argument(
        "--language", action="append", help="only this language (repeatable; default: all)"
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from hotline.cli import settings_from_args
    from hotline.flow.registry import FlowRegistry
    from hotline.i18n.catalog import load_catalogs
    from ivr.warmup import speaker_from_settings, speech_from_settings, static_specs, warm

    settings = settings_from_args(args)
    try:
        catalogs = load_catalogs(
            settings.prompts_dir, settings.languages, settings.default_language
        )
        flows = FlowRegistry.from_directory(settings.flows_dir).flows()
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    unknown = set(args.language or ()) - set(catalogs.languages)
    if unknown:
        print(f"unknown language(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    speaker = speaker_from_settings(settings, catalogs)
    wanted = {speaker.voices[lang] for lang in (args.language or catalogs.languages)}
    specs = [s for s in static_specs(speaker, flows) if s.voice in wanted]

    async def build() -> Any:
        service = speech_from_settings(settings)
        try:
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                disable=args.quiet,
                transient=False,
            ) as progress:
                task = progress.add_task("voice prompts", total=len(specs))
                return await warm(service, specs, lambda _: progress.advance(task))
        finally:
            await service.close()

    started = time.perf_counter()
    report = asyncio.run(build())
    elapsed = time.perf_counter() - started
    print(
        f"{report.total} clip(s) in {settings.ivr.audio_dir}: {report.rendered} rendered, "
        f"{report.cached} already there, {report.failed} failed ({elapsed:.2f} s)"
    )
    return 1 if report.failed else 0
