"""`hotline serve`: run the service."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the USSD + IVR service")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="seconds in-flight requests get to finish on SIGTERM (default 30)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="reload flows and prompts when their files change (one worker)",
    )
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hotline.base.logs import setup_logging
    from hotline.cli import settings_from_args
    from hotline.web.workers import serve

    settings = settings_from_args(args)
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    settings = settings.model_copy(update=overrides)
    if not 1 <= args.workers <= 64:
        print("hotline serve: --workers must be between 1 and 64", file=sys.stderr)
        return 2
    if args.dev and args.workers != 1:
        print("hotline serve: --dev runs one worker (it reloads in process)", file=sys.stderr)
        return 2
    setup_logging(settings.json_logs, settings.log_level)
    log = logging.getLogger("hotline")
    if settings.uses_dev_secret:
        log.warning("pseudonym_secret is the development default: set HOTLINE_PSEUDONYM_SECRET")
    if args.workers > 1 and not settings.redis_url:
        log.warning(
            "--workers %d without redis_url: each worker keeps its own sessions", args.workers
        )
    log.info("hotline starting on http://%s:%d", settings.host, settings.port)
    _say_how_built(log)
    if args.dev:
        log.info("--dev: flows and prompts reload when their files change")
    return serve(
        settings, workers=args.workers, shutdown_timeout=args.shutdown_timeout, dev=args.dev
    )


def _say_how_built(log: logging.Logger) -> None:
    """Compiled or not is worth ~12 % of a USSD step's CPU: say which one runs."""
    from hotline.base.compiled import INSTALLED_ROOT, compiled_modules, stale_modules

    compiled = compiled_modules(INSTALLED_ROOT)
    if not compiled:
        log.info("request path: pure Python (nothing compiled at install: see setup.py)")
        return
    log.info("request path: %d modules compiled by mypyc", len(compiled))
    stale = stale_modules(INSTALLED_ROOT)
    if stale:
        log.warning(
            "compiled modules older than their source, the old code runs: %s "
            "(build them again: pip install -e . or make setup)",
            ", ".join(stale),
        )
