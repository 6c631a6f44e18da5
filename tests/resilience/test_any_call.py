"""The resilience layers around a call that is not a balance lookup.

A stand-in for a later service (plans over a declared http endpoint): a real aiohttp
server answering JSON, a `FunctionCall` fetching from it, and `build_stack` composing
the very layers the balance service uses — from a policy that is not `BalanceSettings`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from hotline.base.errors import UpstreamNotFound, UpstreamTimeout
from hotline.resilience import (
    CallMetrics,
    CircuitOpen,
    FunctionCall,
    UpstreamRefused,
    build_stack,
    lookup_id,
)
from tests.balance.conftest import FakeClock

Plan = dict[str, Any]


@dataclass(frozen=True)
class PlanPolicy:
    """A later service's own settings section: only the fields the stack reads."""

    deadline: float = 0.3
    retries: int = 1
    retry_backoff: float = 0.01
    retry_min_budget: float = 0.05
    breaker_failures: int = 3
    breaker_window: float = 30.0
    breaker_min_calls: int = 20
    breaker_failure_rate: float = 0.5
    breaker_reset: float = 10.0
    max_concurrency: int = 8
    bulkhead_wait: float = 0.1
    upstream_rate: float | None = None
    subscriber_rate: str = "1000/minute"
    fresh_ttl: float = 5.0
    max_stale: float = 60.0
    negative_ttl: float = 30.0
    cache_size: int = 100


@dataclass
class PlanServer:
    """`GET /plans/{id}` → JSON; `mode` makes it slow, fail or hang."""

    url: str = ""
    mode: str = "ok"
    fail_next: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    request_ids: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        plan = request.match_info["plan"]
        self.calls[plan] += 1
        self.request_ids.append(request.headers.get("X-Request-Id", ""))
        if self.mode == "hang":
            await asyncio.sleep(5)
        if self.mode == "slow":
            await asyncio.sleep(0.05)
        if self.fail_next > 0 or self.mode == "down":
            self.fail_next -= 1
            return web.json_response({"code": "UNAVAILABLE"}, status=503)
        if plan.startswith("x"):
            return web.json_response({"code": "NOT_FOUND"}, status=404)
        return web.json_response({"id": plan, "name": f"plan {plan}", "fee_minor": 1800})


@pytest.fixture
async def server() -> AsyncIterator[PlanServer]:
    plans = PlanServer()
    app = web.Application()
    app.router.add_get("/plans/{plan}", plans.handle)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    plans.url = str(test_server.make_url("/plans/"))
    yield plans
    await test_server.close()


def plan_call(server: PlanServer, session: aiohttp.ClientSession) -> FunctionCall[Plan]:
    """The raw call: HTTP statuses mapped onto the errors the layers understand."""

    async def fetch(plan: str) -> Plan:
        headers = {"X-Request-Id": lookup_id()}
        async with session.get(server.url + plan, headers=headers) as response:
            if response.status == 404:
                raise UpstreamNotFound("no such plan")
            if response.status >= 500:
                raise UpstreamRefused(response.status, "UNAVAILABLE", retryable=True, breaker=True)
            body: Plan = await response.json()
            return body

    return FunctionCall("plans-http", fetch, session.close)


def mark_stale(plan: Plan) -> Plan:
    return {**plan, "stale": True}


async def test_the_balance_layers_compose_around_a_plans_call(server: PlanServer) -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    metrics = CallMetrics(registry, "plans")
    stack = build_stack(
        plan_call(server, aiohttp.ClientSession()),
        PlanPolicy(),
        lambda plan: f"p:{plan}",
        metrics,
        mark_stale=mark_stale,
        clock=clock,
    )
    try:
        # Single-flight: 50 concurrent callers, one upstream call; then the cache.
        server.mode = "slow"
        answers = await asyncio.gather(*(stack.fetch("gold") for _ in range(50)))
        assert all(a == {"id": "gold", "name": "plan gold", "fee_minor": 1800} for a in answers)
        assert await stack.fetch("gold") == answers[0]
        assert server.calls["gold"] == 1

        # Retry: one 503, retried once with the same request id.
        server.mode = "ok"
        server.fail_next = 1
        assert (await stack.fetch("silver"))["id"] == "silver"
        assert server.calls["silver"] == 2
        assert server.request_ids[-1] == server.request_ids[-2] != ""

        # Negative cache: a not-found is remembered.
        for _ in range(3):
            with pytest.raises(UpstreamNotFound):
                await stack.fetch("x1")
        assert server.calls["x1"] == 1

        # Deadline: a hanging upstream costs the budget, not the caller's patience.
        server.mode = "hang"
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamTimeout):
            await stack.fetch("bronze")
        assert asyncio.get_running_loop().time() - started < 1.0

        # Stale-if-error past fresh_ttl, labelled by the service's own marker; the breaker
        # opens after 3 failed calls (each retried once) and then nothing reaches the upstream.
        server.mode = "down"
        clock.advance(6)
        for _ in range(3):
            assert await stack.fetch("gold") == {**answers[0], "stale": True}
        state = registry.get_sample_value("hotline_plans_breaker_state", {"provider": "plans-http"})
        assert state == 1
        before = sum(server.calls.values())
        with pytest.raises(CircuitOpen):
            await stack.fetch("platinum")
        assert sum(server.calls.values()) == before
        assert (
            registry.get_sample_value(
                "hotline_plans_cache_hits_total", {"provider": "plans-http", "result": "stale"}
            )
            == 3
        )
        assert registry.get_sample_value("hotline_plans_retries_total", {"provider": "plans-http"})
    finally:
        await stack.close()


async def test_a_call_with_effects_is_neither_cached_coalesced_nor_retried(
    server: PlanServer,
) -> None:
    stack = build_stack(
        plan_call(server, aiohttp.ClientSession()),
        PlanPolicy(),
        lambda plan: f"p:{plan}",
        CallMetrics(CollectorRegistry(), "orders"),
        idempotent=False,
    )
    try:
        await stack.fetch("gold")
        await stack.fetch("gold")
        assert server.calls["gold"] == 2
        server.fail_next = 1
        with pytest.raises(UpstreamRefused):
            await stack.fetch("silver")
        assert server.calls["silver"] == 1
    finally:
        await stack.close()
