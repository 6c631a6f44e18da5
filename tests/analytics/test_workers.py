"""Two `hotline serve` workers on one Redis: every session counted once, whichever worker
took which request; `hotline report` reads the same figures; /metrics sums the workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.analytics.conftest import ACTIVE, ADMIN_TOKEN, ROOT, unknown
from tests.conftest import free_port
from tests.web.conftest import at_form
from tests.web.test_workers import Service


def _env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "HOTLINE_REDIS_URL": redis_url,
        "HOTLINE_FLOWS_DIR": str(ROOT / "flows"),
        "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
        "HOTLINE_BALANCE__LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
        "HOTLINE_PSEUDONYM_SECRET": "analytics-workers-secret",
        "HOTLINE_JSON_LOGS": "true",
        "HOTLINE_SECURITY__ADMIN_TOKEN": ADMIN_TOKEN,
        "HOTLINE_SECURITY__SUBSCRIBER_RATE": "1000/minute",
        "HOTLINE_BALANCE__SUBSCRIBER_RATE": "1000/minute",
        "HOTLINE_ANALYTICS__ENABLED": "true",
        "HOTLINE_ANALYTICS__SETTLE_AFTER": "0",
        "TMPDIR": str(tmp_path),
    }


@pytest.fixture
def service(tmp_path: Path, redis_url: str) -> Iterator[Service]:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hotline", "serve", "--workers", "2", "--port", str(port)],
            cwd=tmp_path,
            env=_env(tmp_path, redis_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    svc = Service(proc, port, log)
    deadline = time.monotonic() + 120  # a busy machine starts two workers slowly
    while time.monotonic() < deadline:
        try:
            svc.get_json("/healthz")
            break
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("service did not start: " + log.read_text())
    yield svc
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _data(svc: Service) -> dict[str, object]:
    request = urllib.request.Request(
        svc.url("/admin/analytics/data?since=1d"),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, object] = json.loads(response.read())
        return data


def test_two_workers_count_each_session_once(
    service: Service, tmp_path: Path, redis_url: str
) -> None:
    assert len(service.pids(2)) == 2, "both workers should answer on the one port"
    phones = [*ACTIVE, *ACTIVE, unknown(1), unknown(2)]
    for i, phone in enumerate(phones):
        # Every request is a new connection: the kernel spreads them over the workers.
        assert service.post("/ussd/africastalking", at_form(f"mw-{i}", "", phone)).startswith("CON")
        assert service.post("/ussd/africastalking", at_form(f"mw-{i}", "1", phone)).startswith(
            "END"
        )

    deadline = time.monotonic() + 20
    totals: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        totals = _data(service)["totals"]  # type: ignore[assignment]
        if totals and totals[0].get("contacts") == len(phones):
            break
        time.sleep(0.2)
    (row,) = totals
    assert (row["channel"], row["flow"]) == ("ussd", "balance")
    assert (row["contacts"], row["result"], row["error"], row["abandoned"]) == (12, 10, 2, 0)

    # The CLI reads the same rollups.
    env = _env(tmp_path, redis_url)
    cli = subprocess.run(
        [sys.executable, "-m", "hotline", "report", "--since", "1d", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (cli_row,) = json.loads(cli.stdout)["totals"]
    assert cli_row == row
    csv_out = subprocess.run(
        [sys.executable, "-m", "hotline", "report", "--since", "1d", "--csv", "--part", "totals"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert csv_out[0].startswith("day,channel,flow,version,suppressed,contacts,result,error")
    assert csv_out[1].startswith("all,ussd,balance,") and ",12,10,2," in csv_out[1]
    table = subprocess.run(
        [sys.executable, "-m", "hotline", "report", "--since", "1d"],
        cwd=tmp_path,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "Sessions per day" in table and "83.3%" in table  # 10 of 12 self-served
    for text in (cli.stdout, "\n".join(csv_out), table):
        assert "13800138" not in text and "12.50" not in text

    # Whichever worker answers the scrape, the settled sessions add up to 12 once.
    with urllib.request.urlopen(service.url("/metrics"), timeout=5) as response:
        metrics = response.read().decode()
    settled = sum(
        s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "hotline_analytics_sessions_total"
    )
    assert settled == 12
