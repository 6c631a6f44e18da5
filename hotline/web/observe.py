"""The outermost middleware: request id, the gateway guard, one access-log line, metrics,
last-resort errors.

A request under a gateway's prefix goes through that gateway's guard
(`hotline.web.guards.GatewayGuard`) here, before its handler: one middleware layer, one
gateway lookup. Metric moves are tallied and applied once per event-loop turn (`MetricTally`).

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
What the client broke is not a bug and pages nobody: a client that hung up mid-request
(`ClientAborted`, or a connection error on a closed transport) and a request aiohttp could
not parse (bad framing, a corrupt body, logged by aiohttp itself) are logged at INFO
without their bytes and counted in `hotline_client_errors_total{kind}`.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hotline.base.errors import ClientAborted
from hotline.base.logs import AccessLog, access_log, bind_request, note
from hotline.base.metrics import Metrics, multiprocess_dir
from hotline.web.guards import Gateway, GatewayFinder, GatewayGuard

__all__ = ["MetricTally", "WireNoise", "client_error_kind", "observe", "observe_many"]

_log = logging.getLogger("hotline.access")
_errors = logging.getLogger("hotline.base.errors")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_CHILDREN_MAX = 4096  # labelled children remembered; the label sets are few and bounded
_RANDOM_POOL = 4096  # bytes of os.urandom read at once for request ids (256 ids)


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


class _RequestIds:
    """New request ids: 32 random hex digits, like `uuid4().hex` without a UUID object.

    Cut from `os.urandom` read 4 KiB at a time: one syscall per 256 requests instead of
    one per request. Workers are spawned, not forked, so no two processes share a pool.
    """

    __slots__ = ("_at", "_pool")

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool = os.urandom(_RANDOM_POOL)
            at = 0
        self._at = at + 16
        return self._pool[at : at + 16].hex()


def observe_many(histogram: Any, amounts: list[float]) -> None:
    """`histogram.observe(a)` for every amount, as one locked update per bucket touched.

    prometheus-client's `observe` takes two locks per value (~8.6 k instructions); a loop
    turn's latencies mostly fall in one or two buckets. Falls back to `observe` for a
    child without the bucket layout this relies on (`_upper_bounds`, `_buckets`, `_sum`).
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for amount in amounts:
            histogram.observe(amount)
        return
    counts: dict[int, int] = {}
    for amount in amounts:
        index = bisect.bisect_left(bounds, amount)  # the first bound with amount <= bound
        counts[index] = counts.get(index, 0) + 1
    total.inc(sum(amounts))
    for index, count in counts.items():
        if index < len(buckets):  # past +Inf only for NaN, which `observe` drops too
            buckets[index].inc(count)


class MetricTally:
    """The metric moves of one event-loop turn, applied together when the turn ends.

    Each prometheus-client `inc` takes a lock (~4.5 k instructions), `observe` two; a
    request moved 2-4 of them. Here a request adds to a dict, and the turn's sum goes to
    each child once (`call_soon`: the same turn's callbacks run first, a scrape in a later
    turn sees it all).
    """

    __slots__ = ("_counts", "_latencies", "_scheduled")

    def __init__(self) -> None:
        self._counts: dict[Any, int] = {}
        self._latencies: dict[Any, list[float]] = {}
        self._scheduled = False

    def inc(self, child: Any) -> None:
        counts = self._counts
        counts[child] = counts.get(child, 0) + 1
        if not self._scheduled:
            self._schedule()

    def observe(self, child: Any, amount: float) -> None:
        found = self._latencies.get(child)
        if found is None:
            self._latencies[child] = [amount]
        else:
            found.append(amount)
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        counts, latencies = self._counts, self._latencies
        if counts:
            self._counts = {}
            for child, count in counts.items():
                child.inc(count)
        if latencies:
            self._latencies = {}
            for child, amounts in latencies.items():
                observe_many(child, amounts)


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


def client_error_kind(exc: BaseException | None) -> str | None:
    """`client_abort` / `bad_framing` when the client broke the request, else None."""
    if isinstance(exc, ClientAborted | ConnectionError):
        return "client_abort"
    if isinstance(exc, HttpProcessingError | web.RequestPayloadError):
        return "bad_framing"
    return None


class WireNoise(logging.Filter):
    """On aiohttp's server logger: what a client broke is INFO, counted, without its bytes.

    aiohttp reports a request it could not parse, or a body that broke while it drained
    it, only through this logger, at ERROR with a traceback whose message quotes the raw
    bytes (a phone number, a balance). Any client could write those at will. The record
    keeps its message and the exception's class; the bytes and the traceback go. Counted
    on every live app's metrics (one app per process outside tests).
    """

    def __init__(self) -> None:
        super().__init__()
        self.metrics: weakref.WeakSet[Metrics] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        kind = client_error_kind(exc)
        if kind is None:
            return True
        for metrics in list(self.metrics):
            metrics.client_errors.labels(kind).inc()
        record.msg = f"{record.msg} ({kind}: {type(exc).__name__})"
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_AIOHTTP_SERVER = logging.getLogger("aiohttp.server")


def _wire_noise() -> WireNoise:
    """The one `WireNoise` on aiohttp's server logger (installed on first use)."""
    for existing in _AIOHTTP_SERVER.filters:
        if isinstance(existing, WireNoise):
            return existing
    noise = WireNoise()
    _AIOHTTP_SERVER.addFilter(noise)
    return noise


def _client_broke(request: web.Request, exc: Exception) -> bool:
    if isinstance(exc, ClientAborted):
        return True
    transport = request.transport
    return isinstance(exc, ConnectionError) and (transport is None or transport.is_closing())


def observe(
    *, metrics: Metrics, gateways: Sequence[Gateway], guard: GatewayGuard | None = None
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Build the middleware; put it first so it sees everything the others do. With a
    `guard`, every request under a gateway's prefix passes it before its handler."""
    _wire_noise().metrics.add(metrics)
    finish = _Finisher(metrics)
    in_flight = _InFlight(metrics)
    find = GatewayFinder(gateways)
    new_id = _RequestIds()

    @web.middleware
    async def middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id")
        request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else new_id()
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
                refused = None
                if gateway is not None and guard is not None:
                    refused = await guard.admit(request, gateway)
                response = await handler(request) if refused is None else refused
            except web.HTTPException as exc:
                exc.headers["X-Request-Id"] = request_id
                status = exc.status
                raise
            except asyncio.CancelledError:
                # With `handler_cancellation` aiohttp cancels the handler of a client that
                # hung up; a cancellation with the connection open is a shutdown.
                transport = request.transport
                if transport is None or transport.is_closing():
                    metrics.client_errors.labels("client_abort").inc()
                    note(outcome="client_abort")
                    status = 400
                raise
            except Exception as exc:
                if _client_broke(request, exc):
                    # Nobody is left to read an answer: count it and say so, no traceback.
                    metrics.client_errors.labels("client_abort").inc()
                    note(outcome="client_abort")
                    _errors.info(
                        "client went away mid-request on %s", _route_label(request, gateway)
                    )
                    response = web.Response(status=400, text="incomplete request")
                else:  # a bug: answer politely, log it, count it
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

    __slots__ = ("_access", "_child", "_label", "_metrics", "_moves", "_tally")

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._child = _Children()
        self._label = _Labels()
        self._tally = MetricTally()
        # (gateway, outcome) → its `requests` and `latency` children: one lookup a
        # request instead of two label tuples and two `_Children` lookups. Gateways are
        # the app's few, outcomes label-safe names from a small vocabulary.
        self._moves: dict[tuple[int, str], tuple[Any, Any]] = {}
        self._access: AccessLog | None = None  # the access log that served last

    def _moves_of(self, gateway: Gateway, outcome: str) -> tuple[Any, Any]:
        metrics, child = self._metrics, self._child
        channel, dialect = gateway.channel, gateway.dialect
        moves = (
            child(metrics.requests, channel, dialect, outcome),
            child(metrics.latency, channel, dialect),
        )
        if len(self._moves) >= _CHILDREN_MAX:
            self._moves.clear()
        self._moves[(id(gateway), outcome)] = moves
        return moves

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
            tally = self._tally
            channel = gateway.channel
            moves = self._moves.get((id(gateway), outcome))
            if moves is None:
                moves = self._moves_of(gateway, outcome)
            tally.inc(moves[0])
            tally.observe(moves[1], elapsed)
            if fields.get("session") == "started":
                tally.inc(child(metrics.sessions_started, channel, label(fields.get("flow"))))
            if fields.get("ended") is True:
                flow, state = label(fields.get("flow")), label(fields.get("state"))
                tally.inc(child(metrics.sessions_ended, channel, flow, state))
            if fields.get("invalid") is True:
                flow, state = label(fields.get("flow")), label(fields.get("state"))
                tally.inc(child(metrics.invalid_inputs, channel, flow, state))
        level = logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO
        if not _log.isEnabledFor(level):
            return
        line = {
            "method": request.method,
            "route": _route_label(request, gateway),
            "status": status,
            # Hundredths of a millisecond, half up: `round(x, 2)` (correctly rounded
            # through decimal digits) cost twice as much, and nothing needs its ties.
            "latency_ms": int(elapsed * 100_000 + 0.5) / 100,
            **fields,
        }
        access = self._access
        if access is None or not access.serves():
            # The handler it writes through was replaced (tests, an operator's setup).
            access = self._access = access_log()
            if access is not None and not access.serves():
                access = self._access = None
        if level == logging.INFO and access is not None:
            access.write(line)  # the same line, without a logging record (~45 µs less)
        else:
            _log.log(level, "request", extra={"fields": line})
