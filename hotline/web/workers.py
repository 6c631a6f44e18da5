"""`hotline serve --workers N`: N processes on one port, a small supervisor above them.

Each worker is a full app (own Redis pool, metrics, flow registry) bound with
SO_REUSEPORT, so the kernel spreads connections across them and no process is in the
request path. Sessions live in Redis, so any worker can continue any session.

The supervisor only forwards signals and replaces crashed workers:
- SIGTERM / SIGINT: every worker gets SIGTERM; aiohttp stops listening, lets in-flight
  requests finish (up to `shutdown_timeout`), then closes Redis. Stragglers are killed.
- SIGHUP: forwarded to every worker, which reloads its flows (`hotline.web.admin`).
- the supervisor killed outright (SIGKILL) still takes its workers with it (Linux
  parent-death signal), so no orphan keeps the port;
- a worker that dies is started again; one that dies within `FAST_FAIL` seconds of
  starting, or reports a start-up error (exit status 2: a broken flow, a bad setting),
  `MAX_FAST_FAILS` times in a row stops the service.
A hand-written loop (not gunicorn) because the whole job is these three rules; gunicorn's
aiohttp worker remains the documented alternative (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web
from prometheus_client.multiprocess import mark_process_dead

from hotline.base.config import Settings
from hotline.base.errors import ConfigError, FlowError
from hotline.base.metrics import MULTIPROC_ENV

__all__ = ["FAST_FAIL", "MAX_FAST_FAILS", "Supervisor", "gunicorn_app", "run_worker", "serve"]

# A port taken or not ours to bind: a one-line message, not a traceback.
_BIND_ERRORS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})

log = logging.getLogger(__name__)

FAST_FAIL = 3.0
MAX_FAST_FAILS = 3
START_ERROR = 2  # a worker's exit status for a start-up error it reported (`file:line`)
_POLL = 0.1
_PR_SET_PDEATHSIG = 1


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_worker(
    settings: Settings,
    *,
    supervisor: int | None = None,
    shutdown_timeout: float = 30.0,
    configure_logging: bool = False,
    dev: bool = False,
) -> int:
    """Serve until SIGTERM/SIGINT in this process; SIGHUP reloads flows and prompts, and
    so does any change to their files with `dev`."""
    from hotline.web.admin import sighup_ctx
    from hotline.web.app import create_app
    from hotline.web.keys import SUPERVISOR

    # Until the loop's own handler is in place a SIGHUP must not kill a starting worker.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if configure_logging:
        from hotline.base.logs import setup_logging

        setup_logging(settings.json_logs, settings.log_level)
    _install_uvloop()
    app = create_app(settings)
    if supervisor is not None:
        app[SUPERVISOR] = supervisor
    app.cleanup_ctx.append(sighup_ctx)
    if dev:
        from hotline.web.admin import dev_reload_ctx

        app.cleanup_ctx.append(dev_reload_ctx())

    def listening(_banner: str) -> None:
        # run_app "prints" once its sites are bound: only then is the worker listening.
        # What start-up made (modules, flows, catalogs, the app) lives as long as the
        # worker: move it out of the collector's generations, so a full collection
        # under load walks only what requests made (shorter pauses in the tail).
        gc.collect()
        gc.freeze()
        log.info(
            "worker listening",
            extra={"fields": {"pid": os.getpid(), "host": settings.host, "port": settings.port}},
        )

    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            reuse_port=True if supervisor is not None else None,
            shutdown_timeout=shutdown_timeout,
            access_log=None,
            print=listening,
        )
    except OSError as exc:
        if exc.errno not in _BIND_ERRORS:
            raise
        where = f"{settings.host}:{settings.port}"
        print(f"hotline: cannot listen on {where}: {os.strerror(exc.errno)}", file=sys.stderr)
        return 2
    return 0


def _die_with(supervisor: int) -> None:
    """Ask Linux for SIGTERM when the supervisor dies (even by SIGKILL): no orphan workers."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM still works
        return
    if os.getppid() != supervisor:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _child(settings: Settings, supervisor: int, shutdown_timeout: float) -> None:
    """Entry point of a spawned worker process."""
    _die_with(supervisor)
    try:
        status = run_worker(
            settings,
            supervisor=supervisor,
            shutdown_timeout=shutdown_timeout,
            configure_logging=True,
        )
    except (ConfigError, FlowError) as exc:  # a broken flow: `file:line: message`, no traceback
        print(f"hotline: {exc}", file=sys.stderr, flush=True)
        status = START_ERROR
    raise SystemExit(status)


class Supervisor:
    """Starts N workers, forwards signals, replaces the ones that die."""

    def __init__(self, settings: Settings, workers: int, shutdown_timeout: float = 30.0) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.settings = settings
        self.count = workers
        self.shutdown_timeout = shutdown_timeout
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[tuple[BaseProcess, float]] = []
        self._stopping = False
        self._hup = False
        self._fast_fails = 0
        self._metrics_dir = ""

    def _start(self) -> tuple[BaseProcess, float]:
        process = self._context.Process(
            target=_child,
            args=(self.settings, os.getpid(), self.shutdown_timeout),
            name="hotline-worker",
            daemon=False,
        )
        process.start()
        log.info("worker started", extra={"fields": {"pid": process.pid}})
        return process, time.monotonic()

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._hup = True

    def _signal_all(self, signum: int) -> None:
        for process, _ in self._workers:
            if process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def _replace_dead(self) -> bool:
        """Restart workers that exited; False when they keep dying at once."""
        for i, (process, started) in enumerate(self._workers):
            if process.is_alive():
                continue
            if process.pid is not None:
                mark_process_dead(process.pid, self._metrics_dir)  # type: ignore[no-untyped-call]
            lived = time.monotonic() - started
            log.warning(
                "worker exited, starting another",
                extra={"fields": {"pid": process.pid, "exitcode": process.exitcode}},
            )
            # Exit status 2 is a start-up error the worker reported itself (a broken flow,
            # a bad setting): it fails the same way however long loading took, so it
            # counts like a fast failure even on a slow, loaded machine.
            start_error = process.exitcode == START_ERROR
            failed_fast = lived < FAST_FAIL or start_error
            self._fast_fails = self._fast_fails + 1 if failed_fast else 0
            if self._fast_fails >= MAX_FAST_FAILS:
                log.error("workers keep exiting right after start; giving up")
                return False
            self._workers[i] = self._start()
        return True

    def run(self) -> int:
        previous = {
            signum: signal.signal(signum, handler)
            for signum, handler in (
                (signal.SIGTERM, self._on_stop),
                (signal.SIGINT, self._on_stop),
                (signal.SIGHUP, self._on_hup),
            )
        }
        status = 0
        # Workers aggregate their metrics through files here (hotline.base.metrics); set before
        # the first spawn so every worker's prometheus-client starts in multiprocess mode.
        self._metrics_dir = tempfile.mkdtemp(prefix="hotline-metrics-")
        os.environ[MULTIPROC_ENV] = self._metrics_dir
        try:
            self._workers = [self._start() for _ in range(self.count)]
            log.info(
                "hotline supervisor running",
                extra={
                    "fields": {
                        "workers": self.count,
                        "host": self.settings.host,
                        "port": self.settings.port,
                    }
                },
            )
            while not self._stopping:
                time.sleep(_POLL)
                if self._hup:
                    self._hup = False
                    self._signal_all(signal.SIGHUP)
                if not self._stopping and not self._replace_dead():
                    status = 1
                    break
        finally:
            self._shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
        return status

    def _shutdown(self) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout + 5.0
        for process, _ in self._workers:
            process.join(max(0.0, deadline - time.monotonic()))
        for process, _ in self._workers:
            if process.is_alive():
                log.error(
                    "worker did not stop in time; killing it",
                    extra={"fields": {"pid": process.pid}},
                )
                process.kill()
                process.join(5.0)
        log.info("hotline supervisor stopped")


def serve(
    settings: Settings, workers: int = 1, shutdown_timeout: float = 30.0, dev: bool = False
) -> int:
    """Run one worker in this process, or a supervisor with `workers` processes."""
    if workers <= 1:
        return run_worker(settings, shutdown_timeout=shutdown_timeout, dev=dev)
    return Supervisor(settings, workers, shutdown_timeout).run()


async def gunicorn_app() -> web.Application:
    """The app for gunicorn's aiohttp worker, the documented alternative to `--workers`:

        gunicorn 'hotline.web.workers:gunicorn_app' --bind 127.0.0.1:8080 --workers 2 \\
            --worker-class aiohttp.GunicornUVLoopWebWorker --graceful-timeout 30

    Settings come from `hotline.yaml` and `HOTLINE_*` as for `hotline serve`; gunicorn's
    own SIGHUP restarts the workers gracefully, which reloads the flows.
    """
    from hotline.base.config import load_settings
    from hotline.base.logs import setup_logging
    from hotline.web.app import create_app

    settings = load_settings()
    setup_logging(settings.json_logs, settings.log_level)
    return create_app(settings)
