"""Flow and prompt reload: `POST /admin/reload` (bearer token, off by default), SIGHUP,
and `hotline serve --dev` (on file change).

The flow registry keeps every version a live session may still use, so a reload only
changes what new sessions start on. A reload rereads `prompts/` too: the new catalogs are
checked (every prompt rule) and the flows are checked against them by every rule of
`hotline flows check` — catalogs, actions, configured endpoints and mounted channels
(their prompt keys and screen measures) — off the event loop; any problem changes nothing
and is reported as `file:line: message [rule]` lines. Flows and catalogs are then
installed together, without an await in between; the channels follow the engine's
catalogs on their next request. Under `hotline serve --workers N` the worker that took
the admin request reloads first (so errors reach the caller), then asks the supervisor
to send SIGHUP to every worker, itself included (reloading twice is harmless). After a
reload the `FLOWS_RELOADED` callbacks run in the background (the voice channel warms the
new prompts there). Prompts are not versioned: a live session sees the new wording.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from hotline.base.errors import FlowsRejected
from hotline.flow.check import load_and_check
from hotline.flow.load import flow_files
from hotline.flow.model import Flow
from hotline.i18n.catalog import CatalogSet, inspect_catalogs
from hotline.web.channels import prompt_keys, screen_checks
from hotline.web.keys import CHANNELS, ENGINE, FLOWS_RELOADED, METRICS, SETTINGS, SUPERVISOR
from hotline.web.security import bearer_ok

__all__ = [
    "DEV_POLL_SECONDS",
    "RELOAD_TASKS",
    "checked_content",
    "checked_flows",
    "dev_reload_ctx",
    "reload_flows",
    "setup",
    "sighup_ctx",
]

log = logging.getLogger(__name__)

ReloadCallback = Callable[[web.Application, list[Flow]], Awaitable[None]]

#: One reload at a time: check and install of two reloads never interleave.
_RELOAD_LOCK = web.AppKey("admin.RELOAD_LOCK", asyncio.Lock)
#: Background work a reload started (SIGHUP reloads, `FLOWS_RELOADED` callbacks); kept
#: so the tasks are not garbage-collected, and cancelled at shutdown.
RELOAD_TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("admin.RELOAD_TASKS")


def checked_content(app: web.Application) -> tuple[list[Flow], CatalogSet]:
    """Load and check the prompts and flows directories as `hotline flows check` does;
    raises `FlowsRejected` with every problem. Blocking (file reads, YAML): run it in a
    thread."""
    settings = app[SETTINGS]
    directory = settings.flows_dir
    engine = app[ENGINE]
    mounted = app[CHANNELS]
    try:
        catalogs, problems = inspect_catalogs(
            settings.prompts_dir, settings.languages, settings.default_language
        )
        if catalogs is None:
            raise FlowsRejected([f"{problem} [{problem.code}]" for problem in problems])
        files = flow_files(directory)
        if not files:
            raise FlowsRejected([f"{directory}: no flow files (*.yaml)"])
        flows, issues = load_and_check(
            files,
            catalogs,
            engine.actions,
            prompt_keys(mounted),
            screen_checks(mounted, catalogs, settings),
            settings.http_endpoints.keys(),
        )
    except OSError as exc:  # a file vanished or is unreadable mid-edit
        raise FlowsRejected([f"{exc.filename or directory}: {exc.strerror or exc}"]) from exc
    if issues:
        raise FlowsRejected([str(issue) for issue in issues])
    return flows, catalogs


def checked_flows(app: web.Application) -> list[Flow]:
    """The flows of `checked_content` (the catalogs they were checked against aside)."""
    return checked_content(app)[0]


async def reload_flows(app: web.Application) -> list[Flow]:
    """Check the prompts and flows directories off the loop and install both; raises
    `FlowsRejected`, changing nothing. Then starts the `FLOWS_RELOADED` callbacks in the
    background."""
    metrics = app[METRICS]
    async with app[_RELOAD_LOCK]:
        try:
            flows, catalogs = await asyncio.to_thread(checked_content, app)
        except FlowsRejected:
            metrics.flow_reloads.labels("failed").inc()
            raise
        # No await between the check above and this: the lock keeps reloads in order,
        # and no request sees new flows with old prompts.
        engine = app[ENGINE]
        engine.registry.install(flows)
        engine.catalogs = catalogs
    metrics.flow_reloads.labels("ok").inc()
    log.info(
        "flows reloaded",  # prompts too: the message is what operators grep for
        extra={
            "fields": {
                "flows": {f.id: f.version for f in flows},
                "prompts": list(catalogs.languages),
                "pid": os.getpid(),
            }
        },
    )
    for callback in app[FLOWS_RELOADED]:
        _background(app, _run_callback(callback, app, flows))
    return flows


async def _run_callback(callback: ReloadCallback, app: web.Application, flows: list[Flow]) -> None:
    try:
        await callback(app, flows)
    except Exception:  # a channel's follow-up work never undoes a reload
        log.exception("after-reload callback failed; the new flows stay installed")


def _background(app: web.Application, work: Coroutine[Any, Any, None]) -> None:
    tasks = app[RELOAD_TASKS]
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _cancel_background(app: web.Application) -> None:
    pending = app[RELOAD_TASKS]
    tasks = list(pending)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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
        flows = await reload_flows(app)
    except FlowsRejected as exc:
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
    """Reload state for every app; mount `POST /admin/reload` only with an admin token."""
    app[_RELOAD_LOCK] = asyncio.Lock()
    app[RELOAD_TASKS] = set()
    app[FLOWS_RELOADED] = []
    app.on_shutdown.append(_cancel_background)
    if app[SETTINGS].security.admin_token is not None:
        app.router.add_post("/admin/reload", _reload, name="admin-reload")


async def sighup_ctx(app: web.Application) -> AsyncIterator[None]:
    """Reload flows on SIGHUP (installed by `hotline serve` on each worker)."""
    loop = asyncio.get_running_loop()

    async def reload_logged() -> None:
        try:
            await reload_flows(app)
        except FlowsRejected as exc:
            log.error("flow reload failed, keeping the loaded flows:\n%s", exc)

    loop.add_signal_handler(signal.SIGHUP, lambda: _background(app, reload_logged()))
    yield
    loop.remove_signal_handler(signal.SIGHUP)


#: How often `hotline serve --dev` looks at the flow and prompt files.
DEV_POLL_SECONDS = 1.0


def _snapshot(app: web.Application) -> dict[str, tuple[int, int]]:
    """`path → (mtime_ns, size)` of every flow and prompt file (a changed set counts too)."""
    settings = app[SETTINGS]
    found: dict[str, tuple[int, int]] = {}
    for directory in (settings.flows_dir, settings.prompts_dir):
        try:
            paths = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
        except OSError:
            continue
        for path in paths:
            try:
                info = path.stat()
            except OSError:
                continue
            found[str(path)] = (info.st_mtime_ns, info.st_size)
    return found


async def _watch(app: web.Application, interval: float, seen: dict[str, tuple[int, int]]) -> None:
    while True:
        await asyncio.sleep(interval)
        now = await asyncio.to_thread(_snapshot, app)
        if now == seen:
            continue
        seen = now
        try:
            await reload_flows(app)
        except FlowsRejected as exc:
            log.error(
                "dev reload: the changed files fail the check, keeping the loaded ones:\n%s", exc
            )


def dev_reload_ctx(
    interval: float = DEV_POLL_SECONDS,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """`hotline serve --dev`: reload flows and prompts when a file changes (polls mtimes;
    no dependency, works on every filesystem, including bind mounts)."""

    async def watching(app: web.Application) -> AsyncIterator[None]:
        # The baseline is taken before start-up completes: taken later (the task's first
        # turn, a thread on a busy host), it could already include an edit made after
        # start-up, and that edit would never be reloaded.
        seen = await asyncio.to_thread(_snapshot, app)
        task = asyncio.create_task(_watch(app, interval, seen))
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return watching
