"""Reminders throughput: events/s from JetStream to decision to outbox.

    .venv/bin/python bench/reminders.py [--events 20000] [--subscribers 2000]
        [--database sqlite|postgresql] [--repeat 3]

Starts a private `nats-server -js`, seeds a store with `--subscribers` opted-in numbers
(SQLite, or a fresh PostgreSQL database on `--pg` — created, copied per mode as a
template, dropped), publishes `--events` usage events (95 % for numbers nobody
subscribed; of the rest a tenth cross a threshold), then drains the durable consumer
with worker *processes*:

- `bare`: the consumer acking every message, nothing else (the ceiling);
- `1 worker` and `2 workers`: `Reminders.handle_batch` on each fetched batch (the real
  store and outbox), one or two processes on the same durable consumer.

Each mode gets a fresh stream and a fresh copy of the seeded database. Printed per
mode: events/s (wall clock from the first delivery until all are acknowledged) and
events per CPU-second of the worker processes (user + system, from their first
batch: steadier than wall clock on a shared machine). Compare modes of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
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
        handle, inner = bare, bare_batch
    else:
        reminders = _reminders(db_url)
        handle, inner = reminders.handle, reminders.handle_batch  # type: ignore[attr-defined]
    started: list[float] = []

    async def batch(events: object) -> list[str]:
        if not started:  # CPU from the first batch: start-up and imports left out
            times = os.times()
            started.append(times.user + times.system)
        return await inner(events)  # type: ignore[no-any-return]

    worker = Worker(
        JetStreamConfig(url=nats_url, batch=200), handle, Pseudonymizer("bench"), handle_batch=batch
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.stop)
    await worker.run()
    times = os.times()
    print(f"CPU {times.user + times.system - (started[0] if started else 0):.3f}", flush=True)


async def _seed(db_url: str, subscribers: int) -> None:
    reminders: Any = _reminders(db_url)
    for i in range(subscribers):
        await reminders.subscribe(f"+86138{i:08d}", 5, channel="sms", language="zh-CN")
    await reminders.messages.counts()  # the outbox's tables too, before the copies
    await reminders.store.close()  # a template database must have no one connected
    await reminders.messages.close()


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


class Store:
    """The seeded database and a fresh copy of it per mode (SQLite file or PostgreSQL
    database made from the seeded one as a template)."""

    def __init__(self, kind: str, tmp: Path, pg_admin: str) -> None:
        self.kind, self.tmp, self.pg_admin = kind, tmp, pg_admin
        self.made: list[str] = []
        self.seed_name = f"bench_rem_{uuid.uuid4().hex[:8]}"

    def _admin(self, sql: str) -> None:
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.pg_admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(sql))
        engine.dispose()

    def _pg(self, name: str) -> str:
        return self.pg_admin.rsplit("/", 1)[0] + f"/{name}"

    def seeded(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp / 'seeded.sqlite3'}"
        self._admin(f"CREATE DATABASE {self.seed_name}")
        self.made.append(self.seed_name)
        return self._pg(self.seed_name)

    def copy(self, label: str) -> str:
        if self.kind == "sqlite":
            db = self.tmp / f"{label}.sqlite3"
            shutil.copy(self.tmp / "seeded.sqlite3", db)
            return f"sqlite:///{db}"
        name = f"{self.seed_name}_{label}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {self.seed_name}")
        self.made.append(name)
        return self._pg(name)

    def drop(self) -> None:
        for name in reversed(self.made):
            with contextlib.suppress(Exception):
                self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _run_mode(
    mode: str, workers: int, nats_url: str, store: Store, label: str, events: int, subscribers: int
) -> tuple[float, float]:
    """Events/s (wall) and events per CPU-second of the workers."""
    db_url = store.copy(label)
    asyncio.run(_publish(nats_url, events, subscribers))
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", mode, nats_url, db_url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    elapsed = asyncio.run(_drained(nats_url, events))
    cpu = 0.0
    for proc in procs:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        cpu += sum(float(line.split()[1]) for line in out.splitlines() if line.startswith("CPU "))
    return events / elapsed, events / cpu if cpu else 0.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL URL allowed to create databases",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of every mode")
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
    store = Store(args.database, tmp, args.pg)
    try:
        wait_port(port, server)
        nats_url = f"nats://127.0.0.1:{port}"
        asyncio.run(_seed(store.seeded(), args.subscribers))
        print(f"store: {args.database}, {args.events} events, {args.subscribers} subscribers")
        ratios = []
        for run in range(1, args.repeat + 1):
            results = {}
            for mode, workers in (("bare", 1), ("handle", 1), ("handle", 2)):
                label = f"{mode}{workers}r{run}"
                rate, per_cpu = _run_mode(
                    mode, workers, nats_url, store, label, args.events, args.subscribers
                )
                results[(mode, workers)] = rate
                name = "bare consumer (ack only)" if mode == "bare" else f"{workers} worker(s)"
                print(
                    f"run {run}  {name:<26}{rate:>8.0f} events/s {per_cpu:>8.0f} events/CPU-s",
                    flush=True,
                )
            ratios.append(results[("handle", 2)] / results[("handle", 1)])
            print(f"run {run}  2 workers / 1 worker: {ratios[-1]:.2f}", flush=True)
        print(f"SUMMARY 2/1 ratio median {statistics.median(ratios):.2f} over {len(ratios)} run(s)")
    finally:
        server.terminate()
        server.wait(timeout=10)
        store.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
