"""Prometheus series for one app, on the app's own `CollectorRegistry`.

No series lives in prometheus-client's global registry: two apps in one process
(tests do this all the time) never collide, and `/metrics` shows exactly this app.
Labels never carry a phone number, a balance or a gateway session id: only channel,
dialect, flow, state names and small fixed vocabularies. Upstream (balance provider)
series are registered by `hotline.balance` on `Metrics.registry`.

Under `hotline serve --workers N` the supervisor sets prometheus-client's own
`PROMETHEUS_MULTIPROC_DIR` for its workers: every worker then writes its values to
files there and `/metrics`, whichever worker answers the scrape, shows the sum over all
workers (gauges: live sum, or per pid for readiness).
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST as _CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "MULTIPROC_ENV", "Metrics", "multiprocess_dir"]

CONTENT_TYPE = _CONTENT_TYPE
# USSD gateways give up after ~10 s; most answers should be well under 100 ms.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_HOP_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30)
# prometheus-client's switch, read by the library itself at import; set only by
# hotline.web.workers for the processes it spawns.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared metrics directory when this process is one of several workers."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """Every hotline series, created once per app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._shared = multiprocess_dir()  # fixed for the process: read once, not per scrape
        r = self.registry
        self.requests = Counter(
            "hotline_requests",
            "Gateway requests answered, by channel, dialect and outcome.",
            ["channel", "dialect", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "hotline_request_duration_seconds",
            "Time to answer a gateway request.",
            ["channel", "dialect"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "hotline_requests_in_flight",
            "Requests being handled right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.rejected = Counter(
            "hotline_rejected_requests",
            "Requests refused before the flow ran, by reason.",
            ["channel", "dialect", "reason"],
            registry=r,
        )
        self.sessions_started = Counter(
            "hotline_sessions_started",
            "Sessions started, by channel and flow.",
            ["channel", "flow"],
            registry=r,
        )
        self.sessions_ended = Counter(
            "hotline_sessions_ended",
            "Sessions that reached an end state, by the state they ended in.",
            ["channel", "flow", "state"],
            registry=r,
        )
        self.sessions_abandoned = Counter(
            "hotline_sessions_abandoned",
            "Sessions the subscriber left while a screen waited for input, by that state.",
            ["channel", "flow", "state"],
            registry=r,
        )
        self.invalid_inputs = Counter(
            "hotline_invalid_inputs",
            "Inputs that matched no option or pattern, by state.",
            ["channel", "flow", "state"],
            registry=r,
        )
        self.errors = Counter(
            "hotline_errors",
            "Errors mapped to a polite answer (or a bug answered with an apology), by kind.",
            ["kind"],
            registry=r,
        )
        self.client_errors = Counter(
            "hotline_client_errors",
            "Requests the client broke, by kind: client_abort (disconnected mid-request), "
            "bad_body (a body that cannot be decoded), bad_framing (not valid HTTP).",
            ["kind"],
            registry=r,
        )
        self.gateway_sessions = Counter(
            "hotline_gateway_session_outcomes",
            "End-of-session notifications from the gateway, by flow and status.",
            ["dialect", "flow", "status"],
            registry=r,
        )
        self.gateway_hops = Histogram(
            "hotline_gateway_session_hops",
            "Hops (app answers) per session as the gateway counted them.",
            ["dialect", "flow", "status"],
            buckets=_HOP_BUCKETS,
            registry=r,
        )
        self.flow_reloads = Counter(
            "hotline_flow_reloads",
            "Flow reloads (SIGHUP or admin endpoint), by outcome.",
            ["outcome"],
            registry=r,
        )
        self.tts_renders = Counter(
            "hotline_tts_renders",
            "Speech synthesized, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.tts_cache = Counter(
            "hotline_tts_cache_lookups",
            "Speech audio cache lookups, by result (hit or miss).",
            ["result"],
            registry=r,
        )
        self.ready = Gauge(
            "hotline_ready",
            "1 when the last readiness check passed, per check.",
            ["check"],
            registry=r,
            multiprocess_mode="liveall",
        )

    def render(self) -> bytes:
        """The Prometheus text exposition: this app's registry, or all workers' sum."""
        if self._shared is None:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=self._shared)  # type: ignore[no-untyped-call]
        return generate_latest(combined)
