"""Flow reload: `POST /admin/reload` (bearer token, off by default) and SIGHUP.

The flow registry keeps every version a live session may still use, so a reload only
changes what new sessions start on. A bad file changes nothing and is reported as
`file:line: message`. Under `hotline serve --workers N` the worker that took the admin
request reloads first (so errors reach the caller), then asks the supervisor to send
SIGHUP to every worker, itself included (reloading twice is harmless).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from hotline.errors import FlowError
from hotline.flow.model import Flow
from hotline.keys import ENGINE, METRICS, SETTINGS, SUPERVISOR
from hotline.security import bearer_ok

__all__ = ["reload_flows", "setup", "sighup_ctx"]

log = logging.getLogger(__name__)


def reload_flows(app: web.Application) -> list[Flow]:
    """Reload the flows directory into the registry; raises `FlowError`, changing nothing."""
    metrics = app[METRICS]
    try:
        flows = app[ENGINE].registry.reload(app[SETTINGS].flows_dir)
    except FlowError:
        metrics.flow_reloads.labels("failed").inc()
        raise
    metrics.flow_reloads.labels("ok").inc()
    log.info(
        "flows reloaded",
        extra={"fields": {"flows": {f.id: f.version for f in flows}, "pid": os.getpid()}},
    )
    return flows


async def _reload(request: web.Request) -> web.Response:
    app = request.app
    token = app[SETTINGS].security.admin_token
    assert token is not None  # the route exists only when a token is configured
    if not bearer_ok(request.headers.get("Authorization"), token.get_secret_value()):
        app[METRICS].rejected.labels("admin", "http", "bearer").inc()
        return web.Response(
            status=401, text="Unauthorized", headers={"WWW-Authenticate": 'Bearer realm="hotline"'}
        )
    try:
        flows = reload_flows(app)
    except FlowError as exc:
        return web.json_response({"reloaded": False, "error": str(exc)}, status=422)
    supervisor = app.get(SUPERVISOR)
    if supervisor:
        os.kill(supervisor, signal.SIGHUP)
    return web.json_response(
        {
            "reloaded": True,
            "flows": {f.id: f.version for f in flows},
            "workers": "all" if supervisor else "this",
        }
    )


def setup(app: web.Application) -> None:
    """Mount `POST /admin/reload` only when an admin token is configured."""
    if app[SETTINGS].security.admin_token is not None:
        app.router.add_post("/admin/reload", _reload, name="admin-reload")


async def sighup_ctx(app: web.Application) -> AsyncIterator[None]:
    """Reload flows on SIGHUP (installed by `hotline serve`, not by tests' apps)."""
    loop = asyncio.get_running_loop()

    def on_hup() -> None:
        try:
            reload_flows(app)
        except FlowError as exc:
            log.error("flow reload failed, keeping the loaded flows: %s", exc)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    yield
    loop.remove_signal_handler(signal.SIGHUP)
