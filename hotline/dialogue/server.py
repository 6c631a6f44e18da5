"""Hotline in this process on a free loopback port, for simulators and dialogue runs.

The tools talk HTTP to it like to any deployed server, so "in-process" and `--url`
runs exercise the same wire path. Each run gets its own ledger file in a temporary
directory, seeded with the demo subscribers, so runs are repeatable and leave no trace.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from hotline.base.config import Settings
from hotline.web.app import create_app
from hotline.web.keys import SPEECH_TEXT

__all__ = ["LocalServer", "in_process", "with_overrides"]


@dataclass(frozen=True, slots=True)
class LocalServer:
    """A hotline running in this process: its URL, and the app for in-process helpers."""

    url: str
    app: web.Application

    def speech_text(self) -> Callable[[str], str | None] | None:
        """What the voice channel says a clip speaks (set by the channel, if mounted)."""
        return self.app.get(SPEECH_TEXT)


def with_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """`settings` with nested overrides applied (`{"balance": {"provider": "http"}}`)."""
    merged = settings.model_dump()
    _merge(merged, overrides)
    return Settings.model_validate(merged)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@asynccontextmanager
async def in_process(
    settings: Settings, overrides: dict[str, Any] | None = None
) -> AsyncIterator[LocalServer]:
    """Run hotline on 127.0.0.1:<free port>"""
    with tempfile.TemporaryDirectory(prefix="hotline-sim-") as tmp:
        extra: dict[str, Any] = {
            "balance": {"ledger_path": str(Path(tmp) / "ledger.sqlite3")},
            # Orders change the plans store: each run starts from the demo catalog.
            "plans": {"store_path": str(Path(tmp) / "plans.sqlite3"), "store_url": None},
        }
        _merge(extra, overrides or {})
        app = create_app(with_overrides(settings, extra))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            yield LocalServer(f"http://{host}:{port}", app)
        finally:
            await runner.cleanup()
