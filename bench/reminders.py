"""Reminders throughput: events/s from JetStream to decision to outbox.

    .venv/bin/python bench/reminders.py [--events 20000] [--subscribers 2000]

Starts a private `nats-server -js`, seeds a SQLite store with `--subscribers` opted-in
numbers, publishes `--events` usage events (most for numbers nobody subscribed, a few
crossing a threshold), then drains the durable consumer with worker *processes*:

- `bare`: the consumer acking every message, nothing else (the ceiling);
- `1 worker` and `2 workers`: `Reminders.handle` on each event (the real store and
  outbox), one or two processes on the same durable consumer.

Each mode gets a fresh stream and a fresh copy of the seeded database. Shared-machine
figures are noisy: compare modes of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._proc import free_port, wait_port  # noqa: E402

STREAM, DURABLE = "BILLING", "hotline-reminders"


def _reminders(url: str) -> object:
    from hotline.base.privacy import Pseudonymizer
    from hotline.reminders.quiet import QuietHours
    from hotline.reminders.service import Reminders
    from hotline.reminders.store import ReminderStore
    from hotline.store.outbox import Outbox

    return Reminders(
        ReminderStore(url),
        Outbox(url),
        quiet=QuietHours(dt.time(0, 0), dt.time(0, 0), ZoneInfo("Asia/Shanghai")),
        pseudonym=Pseudonymizer("bench-secret"),
        daily_cap=100,
    )


async def _worker(nats_url: str, db_url: str, mode: str) -> None:
    from hotline.base.privacy import Pseudonymizer
    from hotline.reminders.events import BalanceEvent
    from hotline.reminders.jetstream import JetStreamConfig, Worker

    async def bare(_event: BalanceEvent) -> str:
        return "bare"

    async def bare_batch(events: object) -> list[str]:
        return []

    if mode == "bare":
        handle, batch = bare, bare_batch
    else:
        reminders = _reminders(db_url)
        handle, batch = reminders.handle, reminders.handle_batch  # type: ignore[attr-defined]
    worker = Worker(
        JetStreamConfig(url=nats_url, batch=200), handle, Pseudonymizer("bench"), handle_batch=batch
    )
    await worker.run()


async def _seed(db_url: str, subscribers: int) -> None:
    reminders = _reminders(db_url)
    for i in range(subscribers):
        await reminders.subscribe(f"+86138{i:08d}", 5, channel="sms", language="zh-CN")  # type: ignore[attr-defined]


async def _publish(nats_url: str, events: int, subscribers: int) -> int:
    import nats

    from hotline.reminders.events import BalanceEvent
    from hotline.reminders.jetstream import JetStreamConfig, ensure_stream, publish_event

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    with contextlib.suppress(Exception):  # a fresh stream per mode
        await js.delete_stream(STREAM)
    await ensure_stream(js, JetStreamConfig(url=nats_url))
    rng = random.Random(7)
    crossings = 0
    now = time.time()
    pending = []
    for n in range(events):
        if rng.random() < 0.05:  # 5 %: a subscriber; a tenth of those falls below 5元
            who = f"+86138{rng.randrange(subscribers):08d}"
            amount = rng.randrange(100, 499) if rng.random() < 0.1 else rng.randrange(600, 9000)
            crossings += amount < 500
        else:
            who = f"+86139{rng.randrange(10**8):08d}"
            amount = rng.randrange(0, 9000)
        event = BalanceEvent(f"b-{n}", "BalanceUsageEvent", now + n * 1e-3, who, amount, "CNY")
        pending.append(publish_event(js, f"billing.balance.p{n % 8}", event))
        if len(pending) >= 500:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    await nc.close()
    return crossings


async def _drained(nats_url: str, events: int) -> float:
    """Seconds from the first delivery (worker start-up excluded) until all are acked."""
    import nats

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    start: float | None = None
    while True:
        try:
            info = await js.consumer_info(STREAM, DURABLE)
        except Exception:
            await asyncio.sleep(0.01)
            continue
        if start is None and info.delivered.stream_seq > 0:
            start = time.perf_counter()
        if (
            info.num_pending == 0
            and info.num_ack_pending == 0
            and info.ack_floor.stream_seq >= events
        ):
            break
        await asyncio.sleep(0.01)
    await nc.close()
    return time.perf_counter() - (start or time.perf_counter())


def _run_mode(
    mode: str, workers: int, nats_url: str, seeded: Path, tmp: Path, events: int, subscribers: int
) -> float:
    db = tmp / f"{mode}-{workers}.sqlite3"
    shutil.copy(seeded, db)
    db_url = f"sqlite:///{db}"
    asyncio.run(_publish(nats_url, events, subscribers))
    procs = [
        subprocess.Popen([sys.executable, __file__, "--worker", mode, nats_url, db_url], cwd=ROOT)
        for _ in range(workers)
    ]
    elapsed = asyncio.run(_drained(nats_url, events))
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=20)
    return events / elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "NATS", "DB"))
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker(args.worker[1], args.worker[2], args.worker[0]))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    port = free_port()
    server = subprocess.Popen(
        ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, server)
        nats_url = f"nats://127.0.0.1:{port}"
        seeded = tmp / "seeded.sqlite3"
        asyncio.run(_seed(f"sqlite:///{seeded}", args.subscribers))
        results = {}
        for mode, workers in (("bare", 1), ("handle", 1), ("handle", 2)):
            rate = _run_mode(mode, workers, nats_url, seeded, tmp, args.events, args.subscribers)
            results[(mode, workers)] = rate
            label = "bare consumer (ack only)" if mode == "bare" else f"{workers} worker(s)"
            print(f"{label:<28}{rate:>10.0f} events/s", flush=True)
        print(f"2 workers / 1 worker: {results[('handle', 2)] / results[('handle', 1)]:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
