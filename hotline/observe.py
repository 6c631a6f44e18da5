"""The outermost middleware: request id, one access-log line, metrics, last-resort errors.

Code on the request path reports facts with `hotline.logs.note(...)`; these keys
also move metrics when the request ends (all optional, all label-safe names):

- `flow`, `state`: the flow id and the state the reply shows (or ended in);
- `outcome`: `continue` | `end` | `repeat` | `apology` | … (default from the status);
- `session="started"`: this request started a session;
- `ended=True`: the session reached an end state (`state` is that state);
- `invalid=True`: the input matched nothing on `state`;
- `subscriber`: the pseudonym (the gateway guard notes it).

An exception nobody mapped is a bug: it is logged (scrubbed, with the request id) and
answered with the gateway's polite reply, or a bare 500 elsewhere, never a traceback.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from hotline.guards import Gateway, find_gateway
from hotline.logs import bind_request, note
from hotline.metrics import Metrics

__all__ = ["observe"]

_log = logging.getLogger("hotline.access")
_errors = logging.getLogger("hotline.errors")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_CHILDREN_MAX = 4096  # labelled children remembered; the label sets are few and bounded


class _Children:
    """Labelled metric children by (metric, label values).

    prometheus-client's `labels()` checks names and takes a lock on every call: it was
    most of this middleware's CPU. The children themselves never change, so keep them.
    """

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[tuple[int, tuple[str, ...]], Any] = {}

    def __call__(self, metric: Any, *values: str) -> Any:
        key = (id(metric), values)
        child = self._known.get(key)
        if child is None:
            if len(self._known) >= _CHILDREN_MAX:
                self._known.clear()
            child = self._known[key] = metric.labels(*values)
        return child


def _label(value: Any, default: str = "none") -> str:
    text = str(value) if value is not None else ""
    return text if _LABEL.fullmatch(text) else default


def _default_outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (403, 413, 429):
        return "rejected"
    return "bad_request" if status < 500 else "error"


def _route_label(request: web.Request, gateway: Gateway | None) -> str:
    """The matched route's pattern (never the raw path: it may hold a path token)."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else "-"
    if gateway is not None and gateway.path_token:
        canonical = canonical.replace(gateway.path_token, "{token}")
    return canonical


def observe(
    *, metrics: Metrics, gateways: Sequence[Gateway]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Build the middleware; put it first so it sees everything the others do."""
    children = _Children()

    @web.middleware
    async def middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id", "")
        # 32 random hex digits, like `uuid4().hex` but without building a UUID object.
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()
        fields: dict[str, Any] = {"request_id": request_id}
        token = bind_request(fields)
        gateway = find_gateway(gateways, request.path)
        if gateway is not None:
            note(channel=gateway.channel, dialect=gateway.dialect)
        started = time.perf_counter()
        metrics.in_flight.inc()
        status = 500
        try:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers["X-Request-Id"] = request_id
                status = exc.status
                raise
            except Exception as exc:  # a bug: answer politely, log it, count it
                metrics.errors.labels(kind=type(exc).__name__[:64]).inc()
                note(outcome="apology" if gateway is not None else "error")
                _errors.exception("unhandled error on %s", _route_label(request, gateway))
                if gateway is not None and gateway.polite is not None:
                    response = await gateway.polite(request, "error")
                else:
                    response = web.Response(status=500, text="Internal error.")
            status = response.status
            response.headers["X-Request-Id"] = request_id
            return response
        finally:
            elapsed = time.perf_counter() - started
            metrics.in_flight.dec()
            _finish(request, gateway, fields, status, elapsed, metrics, children)
            token.var.reset(token)

    return middleware


def _finish(
    request: web.Request,
    gateway: Gateway | None,
    fields: dict[str, Any],
    status: int,
    elapsed: float,
    metrics: Metrics,
    child: _Children,
) -> None:
    outcome = _label(fields.get("outcome"), _default_outcome(status))
    fields["outcome"] = outcome
    if gateway is not None:
        channel, dialect = gateway.channel, gateway.dialect
        child(metrics.requests, channel, dialect, outcome).inc()
        child(metrics.latency, channel, dialect).observe(elapsed)
        flow, state = _label(fields.get("flow")), _label(fields.get("state"))
        if fields.get("session") == "started":
            child(metrics.sessions_started, channel, flow).inc()
        if fields.get("ended") is True:
            child(metrics.sessions_ended, channel, flow, state).inc()
        if fields.get("invalid") is True:
            child(metrics.invalid_inputs, channel, flow, state).inc()
    level = logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO
    if not _log.isEnabledFor(level):
        return
    line = {
        "method": request.method,
        "route": _route_label(request, gateway),
        "status": status,
        "latency_ms": round(elapsed * 1000, 2),
        **fields,
    }
    _log.log(level, "request", extra={"fields": line})
