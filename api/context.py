"""What the API's handlers share for one app: settings, services, stores, metrics.

Built by the channel's cleanup context (`api.channel`) once the core's resources exist;
the balance and messages services are the engine's own `Services`, so the API reads
the very provider, cache and freshness bound USSD reads.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Counter, Histogram

from api.identity import IdentityExchange
from api.state import ApiState, Window
from api.store import ApiStore, AuditWriter
from api.tokens import Tokens
from hotline.base.config import ApiSettings, Settings
from hotline.base.metrics import LATENCY_BUCKETS
from hotline.base.privacy import Pseudonymizer
from hotline.flow.services import Services
from hotline.i18n.catalog import CatalogSet
from hotline.web.observe import MetricTally

__all__ = ["ApiContext", "ApiMetrics", "choose_language"]


class ApiMetrics:
    """Per-client series; the only label beyond the outcome is the client's name, and
    names are the operator's (a bounded set), never a subscriber's.

    A request's count and latency are tallied and applied once per event-loop turn
    (prometheus-client's `inc` takes a lock, `observe` two: most of this class's cost),
    as the platform's `observe` middleware does: a scrape, always in a later turn, sees
    every request answered before it.
    """

    __slots__ = ("_children", "_tally", "audit_refused", "latency", "requests")

    def __init__(self, registry: CollectorRegistry) -> None:
        # prometheus-client's labels() validates and locks on every call; children
        # never change, so they are kept (the label sets are bounded, see above).
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._tally = MetricTally()
        self.requests = Counter(
            "hotline_api_requests",
            "API requests by client name, endpoint and outcome (ok or an error code).",
            ["client", "endpoint", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "hotline_api_request_duration_seconds",
            "Time to answer an API request, by client name.",
            ["client"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.audit_refused = Counter(
            "hotline_api_audit_refused",
            "API requests refused (503) because the audit backlog was full: the API store "
            "has been out of reach for a while.",
            registry=registry,
        )

    def observe(self, client: str, endpoint: str, outcome: str, seconds: float) -> None:
        key = (client, endpoint, outcome)
        children = self._children.get(key)
        if children is None:
            if len(self._children) > 10_000:
                self._children.clear()
            children = self._children[key] = (
                self.requests.labels(client, endpoint, outcome),
                self.latency.labels(client),
            )
        self._tally.inc(children[0])
        self._tally.observe(children[1], seconds)

    def flush(self) -> None:
        """Apply what was tallied (the turn ended, or a test wants it now)."""
        self._tally.flush()


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    tokens: Tokens
    state: ApiState | None  # None: no Redis configured, the API answers 503
    store: ApiStore
    audit: AuditWriter
    metrics: ApiMetrics
    catalogs: CatalogSet
    services: Services
    pseudonym: Pseudonymizer
    client_window: Window
    subscriber_window: Window
    h5_window: Window
    #: `settings.timezone`, resolved once (dates and the 'as of' time are shown in it).
    zone: ZoneInfo
    #: Identity exchanges by configured name (`api.identity`); empty: none.
    exchanges: Mapping[str, IdentityExchange] = field(default_factory=dict)

    @property
    def api(self) -> ApiSettings:
        return self.settings.api


@functools.lru_cache(maxsize=1024)
def choose_language(header: str, languages: tuple[str, ...], default: str) -> str:
    """The best of `languages` for an `Accept-Language` header (RFC 9110 §12.5.4):
    highest q first, a match on the primary subtag counts (`zh-TW` → `zh-CN`).
    Remembered: apps send a handful of distinct headers, over and over."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:16]):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, index, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        for language in languages:
            if language.lower() == tag:
                return language
        primary = tag.split("-")[0]
        for language in languages:
            if language.lower().split("-")[0] == primary:
                return language
    return default
