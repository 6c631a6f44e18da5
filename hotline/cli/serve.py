"""`hotline serve`: run the service."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["register"]


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the USSD + IVR service")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(func=run)


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run(args: argparse.Namespace) -> int:
    from hotline.app import create_app
    from hotline.cli import settings_from_args

    settings = settings_from_args(args)
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    settings = settings.model_copy(update=overrides)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("hotline")
    if settings.uses_dev_secret:
        log.warning("pseudonym_secret is the development default: set HOTLINE_PSEUDONYM_SECRET")
    _install_uvloop()
    app = create_app(settings)
    log.info("hotline listening on http://%s:%d", settings.host, settings.port)
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None)
    return 0
