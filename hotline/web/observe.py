"""The outermost middleware: request id, one access-log line, metrics, last-resort errors.

Code on the request path reports facts with `hotline.base.logs.note(...)`; these keys
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

from hotline.base.logs import bind_request, note
from hotline.base.metrics import Metrics, multiprocess_dir
from hotline.web.guards import Gateway, GatewayFinder

__all__ = ["observe"]

_log = logging.getLogger("hotline.access")
_errors = logging.getLogger("hotline.base.errors")
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


class _Labels:
    """Label-safe values: known good ones from a set, others checked once by the pattern.

    Flow, state and outcome names come from a small vocabulary, so after warm-up every
    check is a set lookup (measured: ~0.2 µs saved per label).
    """

    __slots__ = ("_good",)

    def __init__(self) -> None:
        self._good: set[str] = set()

    def __call__(self, value: Any, default: str = "none") -> str:
        if isinstance(value, str) and value in self._good:
            return value
        text = str(value) if value is not None else ""
        if not _LABEL.fullmatch(text):
            return default
        if len(self._good) >= _CHILDREN_MAX:
            self._good.clear()
        self._good.add(text)
        return text


class _InFlight:
    """`hotline_requests_in_flight`. In one process a plain count the gauge reads at
    scrape time (measured: the gauge's locked inc + dec cost ~0.8 µs a request); under
    several workers the gauge's own inc/dec, which write the shared files scrapes sum."""

    __slots__ = ("_gauge", "count")

    def __init__(self, metrics: Metrics) -> None:
        self.count = 0
        self._gauge = metrics.in_flight if multiprocess_dir() else None
        if self._gauge is None:
            metrics.in_flight.set_function(lambda: self.count)

    def enter(self) -> None:
        if self._gauge is None:
            self.count += 1
        else:
            self._gauge.inc()

    def leave(self) -> None:
        if self._gauge is None:
            self.count -= 1
        else:
            self._gauge.dec()


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
    finish = _Finisher(metrics)
    in_flight = _InFlight(metrics)
    find = GatewayFinder(gateways)

    @web.middleware
    async def middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id", "")
        # 32 random hex digits, like `uuid4().hex` but without building a UUID object.
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()
        gateway = find(request.path)
        fields: dict[str, Any] = (
            {"request_id": request_id}
            if gateway is None
            else {"request_id": request_id, "channel": gateway.channel, "dialect": gateway.dialect}
        )
        token = bind_request(fields)
        started = time.perf_counter()
        in_flight.enter()
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
            in_flight.leave()
            finish(request, gateway, fields, status, elapsed)
            token.var.reset(token)

    return middleware


class _Finisher:
    """What a request leaves behind: its metrics, and the access line when INFO is on."""

    __slots__ = ("_child", "_label", "_metrics")

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._child = _Children()
        self._label = _Labels()

    def __call__(
        self,
        request: web.Request,
        gateway: Gateway | None,
        fields: dict[str, Any],
        status: int,
        elapsed: float,
    ) -> None:
        label, child, metrics = self._label, self._child, self._metrics
        noted = fields.get("outcome")
        outcome = label(noted, "") if noted is not None else ""
        fields["outcome"] = outcome = outcome or _default_outcome(status)
        if gateway is not None:
            channel, dialect = gateway.channel, gateway.dialect
            child(metrics.requests, channel, dialect, outcome).inc()
            child(metrics.latency, channel, dialect).observe(elapsed)
            if fields.get("session") == "started":
                child(metrics.sessions_started, channel, label(fields.get("flow"))).inc()
            if fields.get("ended") is True:
                flow, state = label(fields.get("flow")), label(fields.get("state"))
                child(metrics.sessions_ended, channel, flow, state).inc()
            if fields.get("invalid") is True:
                flow, state = label(fields.get("flow")), label(fields.get("state"))
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
