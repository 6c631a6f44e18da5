"""`/healthz`, `/readyz` and `/metrics` (DESIGN.md §4).

`/healthz` says the process answers. `/readyz` runs the readiness checks the app
factory registered under `READINESS` (sessions store reachable, flows loaded,
balance breaker not open) and answers 503 if any fails, so a load balancer stops
sending traffic to this worker until it recovers. Both bodies are small JSON.
"""

from __future__ import annotations

import asyncio
import os
import time

from aiohttp import web

from hotline.base.metrics import CONTENT_TYPE
from hotline.web.keys import METRICS, READINESS

__all__ = ["CHECK_TIMEOUT", "setup"]

CHECK_TIMEOUT = 1.0  # seconds per check; a hung dependency is a failed one


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "pid": os.getpid()})


async def _run(check_name: str, request: web.Request) -> bool:
    check = request.app[READINESS][check_name]
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return bool(await check())
    except Exception:  # a check that raises has failed; the reason is not the prober's business
        return False


async def readyz(request: web.Request) -> web.Response:
    started = time.perf_counter()
    names = sorted(request.app[READINESS].keys())
    results = await asyncio.gather(*(_run(name, request) for name in names))
    checks = dict(zip(names, results, strict=True))
    metrics = request.app[METRICS]
    for name, ok in checks.items():
        metrics.ready.labels(name).set(1 if ok else 0)
    ready = all(results)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: "ok" if ok else "failing" for name, ok in checks.items()},
        "took_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return web.json_response(body, status=200 if ready else 503)


async def metrics_handler(request: web.Request) -> web.Response:
    # Off the event loop: with several workers, rendering reads every worker's files.
    body = await asyncio.to_thread(request.app[METRICS].render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics_handler, name="metrics")
