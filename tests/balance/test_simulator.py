"""The simulator's own surface: admin API validation, reset, stats, seed files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hotline.balance.signing import SCHEME
from hotline.balance.sim.app import stats_key
from hotline.balance.sim.store import load_seed
from tests.balance.conftest import KEY_ID, Sim


async def test_admin_rejects_bad_input(sim: Sim) -> None:
    url = sim.server.make_url
    async with sim.session.post(url("/_sim/faults"), json={"fault": "explode"}) as resp:
        assert resp.status == 400 and "fault: one of" in await resp.text()
    async with sim.session.post(url("/_sim/faults"), data=b"{not json") as resp:
        assert resp.status == 400
    async with sim.session.put(
        url("/_sim/subscribers/13900000000"), json={"status": "frozen"}
    ) as resp:
        assert resp.status == 400 and "status" in await resp.text()
    async with sim.session.put(url("/_sim/subscribers/12"), json={}) as resp:
        assert resp.status == 400


async def test_unsigned_and_malformed_queries(sim: Sim) -> None:
    url = sim.server.make_url
    async with sim.session.post(
        url("/balance-query/v1/query"), json={"msisdn": "+8613800138000"}
    ) as resp:
        assert resp.status == 401
        assert (await resp.json(content_type=None))["code"] == "UNAUTHENTICATED"
    for stamp in ("²", "1" * 5000):  # str.isdigit admits both; int() refuses them
        async with sim.session.post(
            url("/balance-query/v1/query"),
            json={"msisdn": "+8613800138000"},
            headers={
                "Authorization": f"{SCHEME} keyId={KEY_ID}, signature=x",
                "X-BQ-Timestamp": stamp,
                "X-BQ-Nonce": "n",
            },
        ) as resp:
            assert resp.status == 401
    async with sim.session.post(url("/balance-query/v1/query"), data=b"[]") as resp:
        assert resp.status == 400
        assert resp.content_type == "application/problem+json"
    stats = await sim.stats()
    assert stats["auth_failures"] == 3 and stats["total_calls"] == 0


async def test_reset_restores_the_seed(sim: Sim) -> None:
    await sim.put("13800138000", {"main_minor": 1})
    await sim.fault(fault="hang")
    async with sim.session.post(sim.server.make_url("/_sim/reset")) as resp:
        assert resp.status == 200
    stats = await sim.stats()
    assert stats["rules"] == [] and stats["calls"] == {}


def test_seed_file(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "subscribers:\n"
        "  '+8613900000000':\n"
        "    main_minor: -50\n"
        "    buckets:\n"
        "      - {usage_type: data, remaining: 1048576, valid_until: 2027-01-31}\n",
        encoding="utf-8",
    )
    subs = load_seed(seed, dt.date(2026, 11, 24))
    assert subs["13900000000"].main_minor == -50
    bucket = subs["13900000000"].buckets[0]
    assert bucket.valid_until is not None
    assert bucket.valid_until.utcoffset() == dt.timedelta(hours=8)
    seed.write_text("subscribers:\n  '13900000000': {buckets: [{usage_type: fax}]}\n")
    with pytest.raises(ValueError, match="usage_type"):
        load_seed(seed, dt.date(2026, 11, 24))


async def test_billing_sim_command_serves_on_loopback(tmp_path: Path) -> None:
    """`hotline billing-sim --port P` as a process: signed lookups work, stats count them."""
    import asyncio
    import os
    import subprocess
    import sys

    import aiohttp
    from pydantic import SecretStr

    from hotline.balance.http import HttpProvider
    from hotline.base.config import BalanceSettings
    from hotline.base.privacy import Pseudonymizer
    from tests.conftest import free_port

    port = free_port()
    env = {**os.environ, "HOTLINE_BALANCE__KEY_ID": "cli", "HOTLINE_BALANCE__SECRET": "cli-s"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from hotline.cli import main; sys.exit(main())",
            "billing-sim",
            "--port",
            str(port),
        ],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):  # up to 30 s: a busy machine starts Python slowly
                try:
                    async with session.get(f"{base}/_sim/stats") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            config = BalanceSettings(
                provider="http", url=base, key_id="cli", secret=SecretStr("cli-s")
            )
            provider = HttpProvider(config, Pseudonymizer("k"))
            snap = await provider.fetch("+8613800138001")
            await provider.close()
            assert snap.main_balance is not None and snap.main_balance.minor == 5
            async with session.get(f"{base}/_sim/stats") as resp:
                assert (await resp.json())["calls"] == {stats_key("cli-s", "13800138001"): 1}
    finally:
        proc.terminate()
        proc.wait(5)
    assert proc.stderr is not None
    assert b"listening on http://127.0.0.1:" in proc.stderr.read()
