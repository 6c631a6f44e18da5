"""Balance lookups through the whole provider stack against the billing simulator.

    .venv/bin/python bench/balance.py [--latency-ms 20] [--subscribers 2000] [--concurrency 50]

The simulator runs in its own process (`hotline billing-sim` on a free loopback port)
with a fixed upstream latency. Measured in one run:

- baseline: the bare `http` provider (no layers), every lookup goes upstream;
- cold: the full stack, each subscriber once (every lookup a cache miss);
- warm: the full stack again within `fresh_ttl` (every lookup a cache hit);
- peak: many subscribers dialing at once, 1 000 lookups over a small hot set with
  repeats in flight, counting upstream calls per 1 000 lookups.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from hotline.balance.http import HttpProvider
from hotline.balance.model import BalanceSnapshot
from hotline.balance.provider import open_provider
from hotline.base.config import BalanceSettings, load_settings
from hotline.base.privacy import Pseudonymizer

KEY_ID, SECRET = "bench", "bench-secret"
Fetch = Callable[[str], Awaitable[BalanceSnapshot]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_up(session: aiohttp.ClientSession, base: str) -> None:
    for _ in range(100):
        try:
            async with session.get(f"{base}/_sim/stats") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("billing-sim did not start")


async def _run(
    lookups: list[str], fetch: Callable[[str], Awaitable[BalanceSnapshot]], concurrency: int
) -> tuple[float, list[float], int]:
    """Lookups/s, per-lookup latencies and errors, `concurrency` callers at a time."""
    queue = list(reversed(lookups))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while queue:
            number = queue.pop()
            started = time.perf_counter()
            try:
                await fetch(number)
            except Exception:
                errors += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(lookups) / (time.perf_counter() - started), latencies, errors


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


async def _calls(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(f"{base}/_sim/stats") as resp:
        return int((await resp.json())["total_calls"])


async def main(args: argparse.Namespace) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HOTLINE_BALANCE__KEY_ID": KEY_ID, "HOTLINE_BALANCE__SECRET": SECRET}
    sim = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from hotline.cli import main; sys.exit(main())",
            "billing-sim",
            "--port",
            str(port),
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_up(session, base)
            numbers = [f"139{i:08d}" for i in range(args.subscribers)]
            for number in numbers:
                doc = {
                    "main_minor": 1000 + len(number),
                    "buckets": [{"usage_type": "data", "remaining": 1 << 30}],
                }
                async with session.put(f"{base}/_sim/subscribers/{number}", json=doc):
                    pass
            async with session.post(
                f"{base}/_sim/faults", json={"fault": "latency", "ms": args.latency_ms}
            ):
                pass
            balance = BalanceSettings(
                provider="http",
                url=base,
                key_id=KEY_ID,
                secret=SecretStr(SECRET),
                subscriber_rate="1000/minute",
                fresh_ttl=30,
                max_concurrency=256,
                bulkhead_wait=1.0,
            )
            settings = load_settings(None, balance=balance)
            pseudonym = Pseudonymizer("bench")
            runs: dict[str, list[tuple[float, list[float], int, int]]] = {}

            async def measure(name: str, lookups: list[str], fetch: Fetch, conc: int) -> None:
                before = await _calls(session, base)
                rate, lat, err = await _run(lookups, fetch, conc)
                calls = await _calls(session, base) - before
                runs.setdefault(name, []).append((rate, lat, err, calls))

            peak_name = (
                f"peak: 1000 lookups, {args.peak_subscribers} subscribers, "
                f"{args.peak_concurrency} at once"
            )
            for _ in range(args.rounds):  # interleaved, so machine noise hits all alike
                raw = HttpProvider(balance, pseudonym)
                await measure("baseline: bare http provider", numbers, raw.fetch, args.concurrency)
                await raw.close()
                async with open_provider(settings, pseudonym) as provider:
                    await measure("stack, cold cache", numbers, provider.fetch, args.concurrency)
                    await measure("stack, warm cache", numbers, provider.fetch, args.concurrency)
                async with open_provider(settings, pseudonym) as provider:
                    rng = random.Random(7)
                    hot = numbers[: args.peak_subscribers]
                    peak = [rng.choice(hot) for _ in range(1000)]
                    await measure(peak_name, peak, provider.fetch, args.peak_concurrency)
    finally:
        sim.terminate()
        sim.wait(5)

    def median_run(name: str) -> tuple[float, list[float], int, int]:
        ordered = sorted(runs[name], key=lambda run: run[0])
        return ordered[len(ordered) // 2]

    base_rate = median_run("baseline: bare http provider")[0]
    print(
        f"upstream latency {args.latency_ms} ms, concurrency {args.concurrency}, "
        f"{args.subscribers} subscribers, median of {args.rounds} interleaved rounds, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        "| run | lookups/s | vs baseline | p50 ms | p99 ms | errors | upstream calls "
        "| calls per 1000 lookups |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in runs:
        rate, lat, err, calls = median_run(name)
        print(
            f"| {name} | {rate:,.0f} | {rate / base_rate:.2f}x | {_p(lat, 50):.2f} | "
            f"{_p(lat, 99):.2f} | {err} | {calls} | {calls * 1000 / len(lat):.0f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--peak-subscribers", type=int, default=200)
    parser.add_argument("--peak-concurrency", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    asyncio.run(main(parser.parse_args()))
