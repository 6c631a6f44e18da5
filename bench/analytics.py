"""What operator analytics costs a turn: the request path with and without the observer.

Runs the real engine turn (`hotline.web.turns.take_turn`: step, lay out, save) on the
in-process session store, in interleaved rounds with and without the analytics observer
registered, and prints CPU µs per turn for each and their ratio (this process's CPU
time, so another process's load counts little; still, only the same run's ratio means
anything). Then the observer call alone, and —
with a private `redis-server` when one is installed — what the background work costs
per turn off the request path (sessions held, summarized, counters written) and the
Redis commands it sends per turn.

    .venv/bin/python bench/analytics.py [--turns 6000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

from hotline.analytics.recorder import Recorder  # noqa: E402
from hotline.analytics.store import AnalyticsStore  # noqa: E402
from hotline.base.config import Settings  # noqa: E402
from hotline.flow.events import ChannelEvent  # noqa: E402
from hotline.flow.screen import Screen  # noqa: E402
from hotline.store.redisurl import open_redis  # noqa: E402
from hotline.web.app import FLOWS, create_app  # noqa: E402
from hotline.web.keys import PSEUDONYM, TURN_OBSERVERS  # noqa: E402
from hotline.web.turns import take_turn  # noqa: E402

PHONE = "+8613800138000"
SCRIPT = (("start", ""), ("input", "5"), ("input", "0"))  # main → language → back: no lookup


@dataclass(frozen=True, slots=True)
class Laid:
    pages: int
    ends: bool


def _lay_out(screen: Screen) -> Laid:
    return Laid(1, screen.ends)


def _events(n: int, tag: str) -> list[ChannelEvent]:
    found = []
    for i in range(n // len(SCRIPT)):
        for kind, text in SCRIPT:
            found.append(
                ChannelEvent("ussd", "africastalking", f"{tag}-{i}", PHONE, kind, text, "*100#")  # type: ignore[arg-type]
            )
    return found


async def _round(app: web.Application, events: list[ChannelEvent]) -> float:
    """CPU µs per turn (this process's time: a shared machine's other load does not count)."""
    start = time.process_time()
    for event in events:
        await take_turn(app, event, _lay_out)
    return (time.process_time() - start) / len(events) * 1e6


async def _redis_calls(redis: Any) -> int:
    """Commands the server ran so far (INFO commandstats; what vs_hotline.sh counts)."""
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _off_path(settings: Settings, app: web.Application, turns: int) -> None:
    """Flush and settle cost per turn against a private redis-server."""
    binary = shutil.which("redis-server")
    if binary is None:
        print("off the path: skipped (no redis-server)")
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as scratch:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", scratch],
            stdout=subprocess.DEVNULL,
        )
        try:
            redis = open_redis(f"redis://127.0.0.1:{port}/0")
            for _ in range(100):
                try:
                    await redis.ping()
                    break
                except Exception:
                    await asyncio.sleep(0.05)
            recorder = Recorder(
                settings=settings,
                store=AnalyticsStore(redis, settings.env),
                flows=app[FLOWS],
                pseudonym=app[PSEUDONYM],
            )
            app[TURN_OBSERVERS][:] = [recorder.observe]
            await _round(app, _events(turns, "redis"))
            # CPU of this process (what the background work takes from the workers' loop);
            # Redis's own time runs in its process, its commands are counted.
            calls = await _redis_calls(redis)
            start = time.process_time()
            recorded = await recorder.flush()
            settled = await recorder.settle(now=time.time() + 100_000)
            spent = (time.process_time() - start) / max(recorded, 1) * 1e6
            commands = await _redis_calls(redis) - calls - 1  # the INFO call itself
            print(
                f"off the path (CPU): flush + settle {spent:.1f} µs/turn ({recorded} turns, "
                f"{settled} sessions of 3 turns); Redis: {commands} commands, "
                f"{commands / max(recorded, 1):.4f}/turn"
            )
            await redis.aclose()
        finally:
            proc.terminate()
            proc.wait(10)


async def _main(turns: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            flows_dir=ROOT / "flows",
            prompts_dir=ROOT / "prompts",
            balance={"ledger_path": Path(scratch) / "ledger.sqlite3"},  # type: ignore[arg-type]
            security={"subscriber_rate": "1000000/minute"},  # type: ignore[arg-type]
        )
        app = create_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            redis = open_redis("redis://127.0.0.1:1/0")  # never used: observe() only buffers
            recorder = Recorder(
                settings=settings,
                store=AnalyticsStore(redis, settings.env),
                flows=app[FLOWS],
                pseudonym=app[PSEUDONYM],
            )
            app[TURN_OBSERVERS] = []
            # Off the path first, while the in-process session store is small (a big heap
            # makes every collection of the cyclic GC dearer, whoever triggers it).
            await _off_path(settings, app, turns)
            app[TURN_OBSERVERS][:] = []
            await _round(app, _events(600, "warm"))
            without: list[float] = []
            with_observer: list[float] = []
            for r in range(rounds):
                # ABBA: the in-process store grows round by round; alternate who goes first.
                for on in (False, True) if r % 2 == 0 else (True, False):
                    app[TURN_OBSERVERS][:] = [recorder.observe] if on else []
                    took = await _round(app, _events(turns, f"{on}{r}"))
                    (with_observer if on else without).append(took)
                    recorder._buffer.clear()  # the bench drops what a flush would write
            off, on = statistics.median(without), statistics.median(with_observer)
            print(f"take_turn without observer: {off:.2f} µs CPU/turn (median of {rounds} rounds)")
            print(f"take_turn with analytics:   {on:.2f} µs CPU/turn")
            print(f"ratio {on / off:.3f}  (+{on - off:.2f} µs/turn)")

            event = _events(3, "alone")[1]
            turn = None

            def capture(e: ChannelEvent, t: object, ends: bool) -> None:
                nonlocal turn
                turn = t

            app[TURN_OBSERVERS][:] = [capture]
            for e in _events(3, "alone"):
                await take_turn(app, e, _lay_out)
            assert turn is not None
            # CPU time (not wall: a shared machine's other processes do not count), in
            # batches the buffer holds (past `analytics.buffer` a call only counts a drop).
            batch, spent = 50_000, []
            for _ in range(8):
                recorder._buffer.clear()
                start = time.process_time()
                for _ in range(batch):
                    recorder.observe(event, turn, False)  # type: ignore[arg-type]
                spent.append((time.process_time() - start) / batch * 1e9)
            recorder._buffer.clear()
            print(
                f"observer call alone (CPU): {statistics.median(spent):.0f} ns "
                f"(median of 8 × {batch}; min {min(spent):.0f})"
            )
            await redis.aclose()
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=6000, help="turns per round")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    args = parser.parse_args()
    asyncio.run(_main(args.turns, args.rounds))


if __name__ == "__main__":
    main()
