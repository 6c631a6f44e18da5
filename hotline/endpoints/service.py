"""Every declared endpoint inside the resilience layers: the `HttpService` of flows.

Each endpoint is its own stack (`hotline.resilience.build_stack`, `idempotent=False`):
per-subscriber limit → deadline (`timeout`) → bulkhead → breaker → metered → raw. A POST
has effects, so it is never retried, coalesced or answered from a cache. Through the
layers a call is keyed by `pseudonym \\n JSON body`: the limit counts per subscriber
(card-number guessing is bounded) and logs see only the pseudonym.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from hotline import resilience
from hotline.base.config import HttpEndpointSettings, Settings
from hotline.base.errors import UpstreamUnavailable
from hotline.base.privacy import Pseudonymizer
from hotline.endpoints.client import EndpointClient
from hotline.flow.services import HttpAnswer
from hotline.resilience.metrics import CallMetrics

__all__ = ["Endpoints", "open_endpoints"]


@dataclass(frozen=True, slots=True)
class _Policy:
    """An endpoint's settings as the `resilience.Policy` its stack is built from."""

    deadline: float
    breaker_failures: int
    breaker_reset: float
    max_concurrency: int
    subscriber_rate: str
    retries: int = 0
    retry_backoff: float = 0.0
    retry_min_budget: float = 0.0
    breaker_window: float = 30.0
    breaker_min_calls: int = 20
    breaker_failure_rate: float = 0.5
    bulkhead_wait: float = 0.1
    upstream_rate: float | None = None
    fresh_ttl: float = 0.0
    max_stale: float = 0.0
    negative_ttl: float = 0.0
    cache_size: int = 1

    @classmethod
    def of(cls, config: HttpEndpointSettings) -> _Policy:
        return cls(
            deadline=config.timeout,
            breaker_failures=config.breaker_failures,
            breaker_reset=config.breaker_reset,
            max_concurrency=config.max_concurrency,
            subscriber_rate=config.subscriber_rate,
        )


def _limit_key(call_key: str) -> str:
    return call_key.partition("\n")[0]


class Endpoints:
    """`HttpService`: the declared endpoints by name, each inside its layers."""

    def __init__(
        self,
        endpoints: Mapping[str, HttpEndpointSettings],
        pseudonym: Pseudonymizer,
        metrics: CallMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pseudonym = pseudonym
        self._session: aiohttp.ClientSession | None = None
        self._stacks: dict[str, resilience.Call[HttpAnswer]] = {}
        for name, config in endpoints.items():
            client = EndpointClient(name, config, self._client)

            async def post(key: str, client: EndpointClient = client) -> HttpAnswer:
                return await client.post(json.loads(key.partition("\n")[2]))

            self._stacks[name] = resilience.build_stack(
                resilience.FunctionCall(name, post),
                _Policy.of(config),
                _limit_key,
                metrics,
                idempotent=False,
                clock=clock,
            )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
                raise_for_status=False,
            )
        return self._session

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._stacks)

    async def call(
        self, endpoint: str, subscriber: str, payload: Mapping[str, Any], /
    ) -> HttpAnswer:
        stack = self._stacks.get(endpoint)
        if stack is None:
            raise UpstreamUnavailable(f"no endpoint {endpoint!r} is configured")
        body = json.dumps(dict(payload), ensure_ascii=False, separators=(",", ":"))
        return await stack.fetch(f"{self._pseudonym(subscriber)}:{endpoint}\n{body}")

    async def close(self) -> None:
        for stack in self._stacks.values():
            await stack.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


@asynccontextmanager
async def open_endpoints(
    settings: Settings,
    pseudonym: Pseudonymizer,
    registry: CollectorRegistry | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Endpoints]:
    """The configured `http_endpoints` as one service; closed on exit. Metrics are
    `hotline_endpoint_*`, labelled (`provider`) by endpoint name."""
    metrics = CallMetrics(registry if registry is not None else CollectorRegistry(), "endpoint")
    endpoints = Endpoints(settings.http_endpoints, pseudonym, metrics, clock=clock)
    try:
        yield endpoints
    finally:
        await endpoints.close()
