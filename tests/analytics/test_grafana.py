"""The shipped Grafana dashboard (`docs/grafana/hotline.json`) against what hotline exports:
every expression names series `/metrics` serves, the analytics series have bounded labels,
and a real Prometheus (Debian's, when installed) evaluates every panel's query."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hotline.analytics.recorder import RECORDER
from tests.analytics.conftest import ACTIVE, ROOT, Call, Client, Ussd, sms, unknown
from tests.conftest import free_port

MakeClient = Callable[..., Awaitable[Client]]
DASHBOARD = ROOT / "docs" / "grafana" / "hotline.json"
PROMETHEUS = shutil.which("prometheus")
METRIC = re.compile(r"\bhotline_[a-z0-9_]+")
# Labels the analytics series may carry: names from the flow files and small fixed sets.
BOUNDED = {"channel", "flow", "outcome", "state", "score", "le"}


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    found += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return found


def _exported(text: str) -> set[str]:
    """Every series name `/metrics` declares (a family without samples yet included)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    found: set[str] = set()
    for family in text_string_to_metric_families(text):
        found.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        found.update(s.name for s in family.samples)
    return found


def _concrete(expr: str) -> str:
    """What Grafana sends once its variables are filled in."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
        .replace('"$flow"', '".*"')
        .replace('"$channel"', '".*"')
    )


async def _traffic(client: Client) -> None:
    for i, phone in enumerate(ACTIVE):
        s = Ussd(client, f"g-{i}", phone)
        await s.send()
        await s.send("1")
        await sms(client, phone, f"PJ {i % 5 + 1}")
    s = Ussd(client, "g-bad", unknown(1))
    await s.send()
    await s.send("9")
    call = Call(client, "CA" + "7" * 32, ACTIVE[0])
    await call.start()
    await call.press("0")
    recorder = client.app[RECORDER]
    await recorder.flush()
    await recorder.settle(now=time.time() + 100_000)
    await recorder.sample()


async def test_every_dashboard_expression_names_a_series_hotline_exports(
    make_client: MakeClient,
) -> None:
    client = await make_client(ivr={"agent_number": "+8610000"})
    await _traffic(client)
    text = await (await client.get("/metrics")).text()
    samples = _exported(text)
    exprs = _exprs()
    assert len(exprs) >= 15
    for expr in exprs:
        names = METRIC.findall(expr)
        assert names, expr
        for name in names:
            assert name in samples, f"{name} (in {expr!r}) is not exported"
    analytics = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("hotline_analytics_")
    ]
    assert analytics
    for s in analytics:
        assert set(s.labels) <= BOUNDED, s
    assert not re.search(r"1380013800|12\.50", text)


@pytest.fixture
def prometheus_dir(tmp_path: Path) -> Iterator[Path]:
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (make system-deps installs Debian's prometheus)")
    yield tmp_path / "prometheus"


async def _query(session: aiohttp.ClientSession, base: str, expr: str) -> dict[str, Any]:
    url = f"{base}/api/v1/query?query={urllib.parse.quote(expr)}"
    async with session.get(url) as response:
        body: dict[str, Any] = await response.json()
        assert response.status == 200, (expr, body)
        return body


async def test_a_real_prometheus_evaluates_every_panel(
    make_client: MakeClient, prometheus_dir: Path
) -> None:
    client = await make_client(ivr={"agent_number": "+8610000"})
    await _traffic(client)
    prometheus_dir.mkdir()
    port = free_port()
    config = prometheus_dir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: hotline\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{client.port}']}}]\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={prometheus_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            # Wait for three scrapes of hotline (a rate needs two points).
            for _ in range(150):
                try:
                    body = await _query(session, base, 'count_over_time(up{job="hotline"}[1m])')
                    if body["data"]["result"] and float(body["data"]["result"][0]["value"][1]) >= 3:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            else:
                pytest.fail("prometheus did not scrape hotline")
            results: dict[str, list[Any]] = {}
            for expr in _exprs():
                if expr.startswith("label_values("):
                    name = METRIC.findall(expr)[0]
                    body = await _query(session, base, f"count by (flow) ({name})")
                else:
                    body = await _query(session, base, _concrete(expr))
                assert body["status"] == "success", (expr, body)
                results[expr] = body["data"]["result"]
            assert all(isinstance(r, list) for r in results.values())
            # Panels whose series have data show it.
            funnel = next(
                r for e, r in results.items() if "state_visits_total" in e and "sort_desc" in e
            )
            assert {row["metric"]["state"] for row in funnel} >= {
                "main",
                "show_balance",
                "survey_thanks",
            }
            scores = next(
                r for e, r in results.items() if "survey_scores_total" in e and "by (score)" in e
            )
            assert {row["metric"]["score"] for row in scores} == {"1", "2", "3", "4", "5"}
            outcomes = next(r for e, r in results.items() if "sum by (outcome)" in e)
            assert {row["metric"]["outcome"] for row in outcomes} >= {
                "result",
                "transfer",
                "abandoned",
            }
    finally:
        proc.terminate()
        proc.wait(10)
