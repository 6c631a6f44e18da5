"""SMS load benchmark: hotline's SMS channel against baselines measured in the same run.

    python bench/sms.py [--parts kannel,smpp,outbox] [--duration 8] [--concurrency 50]
                        [--messages 3000] [--json FILE]

A private redis-server on a free port; each target is its own process on its own port
(one worker), pinned to CPU 0, the load generator (this process) and redis to CPU 1.

- `kannel`: MO → MT over the Kannel route. The load plays smsbox: `GET /sms/kannel?from=…
  &to=10086&text=YE&coding=0&charset=UTF-8&id=…` (a fresh id each, over the demo
  subscribers) on keep-alive connections, `--concurrency` in flight; the reply is the
  body. Targets: `hotline` (`hotline serve`, Redis sessions, the SQLite ledger, the real
  flow and layout) and `minimal`, an aiohttp handler doing the unavoidable work of an SMS
  keyword answer — read the query, one Redis GET and one SET with a TTL (the thread),
  a fixed UCS-2 reply with `X-Kannel-Coding: 2`. (`--no-ids`, a diagnostic: calls without
  an id, so hotline skips its redelivery ledger — what that ledger costs.)
- `smpp`: MO → MT through SMPP. This process is the SMSC (`smpp34.Server`, the library
  the tests use as a peer): it sends `deliver_sm` `YE` and times each until the
  `submit_sm` reply to that subscriber arrives (replies matched first in, first out per
  subscriber), `--concurrency` in flight. Targets: `hotline` bound as a transceiver
  (`sms.transport: smpp`) and `echo`, a `smpp34` ESME that answers every MO with a fixed
  UCS-2 `submit_sm` — the same peer without hotline.
- `outbox`: delivery of `--messages` queued messages to the SMSC. `hotline` starts with
  that many rows in its SQLite outbox (`sms.send_rate` 10000, `sms.send_window` 50)
  and delivers them over SMPP; `echo` submits as many fixed messages over one session as fast as its window
  allows. Messages/s from the first `submit_sm` to the last.

It prints messages/s, p50 and p99 MO→MT latency per target and hotline's ratio to its
baseline. On this shared machine only the same-run ratios mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

from _proc import cpu_seconds, free_port, hotline_env, pin, process, redis_server

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
PHONES = tuple(f"8613800138{n:03d}" for n in (0, 1, 2, 4, 5))  # demo numbers, not suspended
SERVICE = "10086"
REPLY = "您的话费余额为12.50元。【hotline】"
SIGNATURE = "【hotline】".encode()
SYSTEM_ID, PASSWORD = "hotline", "bench"


@dataclass
class Result:
    part: str
    target: str
    messages: int
    errors: int
    seconds: float
    per_second: float
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    cpu_ms: float = float("nan")  # the target's CPU per message while measured


def _quantiles(latencies: list[float]) -> tuple[float, float]:
    if len(latencies) < 2:
        return float("nan"), float("nan")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return round(cuts[49] * 1000, 2), round(cuts[98] * 1000, 2)


# ------------------------------------------------------------------ baseline servers


def _serve_minimal(port: int, redis_url: str) -> None:
    """The Kannel-route baseline, in its own process, until SIGTERM."""
    import redis.asyncio as aioredis
    import uvloop
    from aiohttp import web

    body = REPLY.encode()
    client = web.AppKey("client", aioredis.Redis)

    async def answer(request: web.Request) -> web.Response:
        query = request.query
        key = f"bench:sms:thread:{query['to']}:{query['from']}"
        previous = await request.app[client].get(key)
        record = f"{query['text']}|{query.get('id', '')}|{previous!r:.16}".encode()
        await request.app[client].set(key, record, ex=600)
        return web.Response(
            body=body,
            headers={"Content-Type": "text/plain; charset=utf-8", "X-Kannel-Coding": "2"},
        )

    async def redis_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app[client] = aioredis.from_url(redis_url, max_connections=256)
        yield
        await app[client].aclose()

    app = web.Application()
    app.cleanup_ctx.append(redis_ctx)
    app.router.add_get("/sms/kannel", answer)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _serve_echo(smsc_port: int, window: int, flood: int) -> None:
    """The SMPP baseline ESME, in its own process: answers each MO with a fixed UCS-2
    `submit_sm`; with `flood`, first submits that many messages as fast as it can."""
    import smpp34
    import uvloop

    octets = REPLY.encode("utf-16-be")

    async def run() -> None:
        client = smpp34.Client(
            "127.0.0.1", smsc_port, "echo", PASSWORD, bind_type="TRX", window_size=window
        )
        smsc = await client.connect()
        gate = asyncio.Semaphore(window)
        tasks: set[asyncio.Task[None]] = set()

        async def submit(to: str) -> None:
            async with gate:
                await smsc.submit_sm(to, octets, source_addr=SERVICE, data_coding=8)

        def spawn(to: str) -> None:
            task = asyncio.ensure_future(submit(to))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        for n in range(flood):
            await gate.acquire()  # keep at most `window` waiting, as a sender would
            gate.release()
            spawn(PHONES[n % len(PHONES)])
        while True:
            event = await smsc.next()
            if isinstance(event, smpp34.Disconnected):
                return
            spawn(event.source_addr)

    uvloop.install()
    asyncio.run(run())


def _baseline(kind: str, *args: str) -> list[str]:
    return [sys.executable, __file__, "--serve", kind, *args]


# ------------------------------------------------------------------------ the SMSC


class Smsc:
    """This process as the SMSC: counts and times the `submit_sm` it gets."""

    def __init__(self, port: int) -> None:
        import smpp34

        self.server = smpp34.Server(host="127.0.0.1", port=port, system_id="BENCHSMSC")
        self.bound: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.waiting: dict[str, collections.deque[asyncio.Future[float]]] = collections.defaultdict(
            collections.deque
        )
        self.submits: list[float] = []
        self.counter = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.server.start()
        self.task = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        import smpp34

        while True:
            event = await self.server.next()
            if isinstance(event, smpp34.Esme):
                if not self.bound.done():
                    self.bound.set_result(event)
            elif isinstance(event, smpp34.SubmitSmEvent):
                self.counter += 1
                event.accept(f"B{self.counter:08d}")
                now = time.perf_counter()
                self.submits.append(now)
                queue = self.waiting.get(event.destination_addr)
                while queue:
                    future = queue.popleft()
                    if not future.done():
                        future.set_result(now)
                        break

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.server.stop()


Run = tuple[int, int, list[float], float, float]  # done, errors, latencies, seconds, CPU s


async def _smpp_load(
    smsc: Smsc, esme: object, pid: int, *, duration: float, warmup: float, concurrency: int
) -> Run:
    """MO `YE` → the reply, `concurrency` loops; (answered, errors, latencies, seconds)."""
    octets = b"YE"
    latencies: list[float] = []
    counts = {"done": 0, "errors": 0}
    measuring = False
    stop_at = time.perf_counter() + warmup + duration

    async def loop(worker: int) -> None:
        n = worker
        while time.perf_counter() < stop_at:
            phone = PHONES[n % len(PHONES)]
            n += concurrency
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            smsc.waiting[phone].append(future)
            started = time.perf_counter()
            try:
                await esme.deliver_sm(SERVICE, octets, source_addr=phone)  # type: ignore[attr-defined]
                answered = await asyncio.wait_for(future, 5.0)
            except (TimeoutError, Exception):
                if measuring:
                    counts["errors"] += 1
                continue
            if measuring:
                latencies.append(answered - started)
                counts["done"] += 1

    tasks = [asyncio.ensure_future(loop(w)) for w in range(concurrency)]
    await asyncio.sleep(warmup)
    measuring = True
    began, cpu = time.perf_counter(), cpu_seconds(pid)
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - began
    return counts["done"], counts["errors"], latencies, seconds, cpu_seconds(pid) - cpu


# ------------------------------------------------------------------------ the parts


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-sms-") as tmp:
        yield Path(tmp)


def _hotline_args(port: int) -> list[str]:
    hotline = shutil.which("hotline", path=str(Path(sys.executable).parent)) or "hotline"
    return [hotline, "serve", "--port", str(port)]


def _smpp_env(base: dict[str, str], smsc_port: int, window: int) -> dict[str, str]:
    return {
        **base,
        "HOTLINE_SMS__TRANSPORT": "smpp",
        "HOTLINE_SMS__SENDER": "smpp",
        "HOTLINE_SMS__SEND_RATE": "10000",
        "HOTLINE_SMS__SEND_WINDOW": str(window),
        "HOTLINE_SMS__SMPP__HOST": "127.0.0.1",
        "HOTLINE_SMS__SMPP__PORT": str(smsc_port),
        "HOTLINE_SMS__SMPP__SYSTEM_ID": SYSTEM_ID,
        "HOTLINE_SMS__SMPP__PASSWORD": PASSWORD,
        "HOTLINE_SMS__SMPP__WINDOW": str(window),
    }


async def _kannel_load(
    port: int,
    pid: int,
    *,
    duration: float,
    warmup: float,
    concurrency: int,
    no_ids: bool = False,
) -> Run:
    """smsbox's get-url calls on raw keep-alive connections (a cheap client)."""
    latencies: list[float] = []
    counts = {"done": 0, "errors": 0}
    measuring = False
    stop_at = time.perf_counter() + warmup + duration

    async def loop(worker: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = worker
        try:
            while time.perf_counter() < stop_at:
                query = urlencode(
                    {
                        "from": "+" + PHONES[n % len(PHONES)],
                        "to": SERVICE,
                        "text": "YE",
                        "coding": "0",
                        "charset": "UTF-8",
                        **({} if no_ids else {"id": f"b{worker}x{n}"}),
                    }
                )
                n += concurrency
                started = time.perf_counter()
                writer.write(
                    f"GET /sms/kannel?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if not measuring:
                    continue
                latencies.append(time.perf_counter() - started)
                # Any SMS reply counts (one demo subscriber owes: 您已欠费…).
                if head[9:12] == b"200" and body.endswith(SIGNATURE):
                    counts["done"] += 1
                else:
                    counts["errors"] += 1
        finally:
            writer.close()

    tasks = [asyncio.ensure_future(loop(w)) for w in range(concurrency)]
    await asyncio.sleep(warmup)
    measuring = True
    began, cpu = time.perf_counter(), cpu_seconds(pid)
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - began
    return counts["done"], counts["errors"], latencies, seconds, cpu_seconds(pid) - cpu


def _result(part: str, target: str, run: Run) -> Result:
    done, errors, latencies, seconds, cpu = run
    p50, p99 = _quantiles(latencies)
    per = round(cpu * 1000 / done, 3) if done else float("nan")
    return Result(
        part, target, done, errors, round(seconds, 2), round(done / seconds, 1), p50, p99, per
    )


async def _part_kannel(args: argparse.Namespace, redis_url: str, work: Path) -> list[Result]:
    results = []
    for target in ("hotline", "minimal"):
        port = free_port()
        command = (
            _hotline_args(port)
            if target == "hotline"
            else _baseline("minimal", str(port), redis_url)
        )
        env = hotline_env(redis_url, work, HOTLINE_SMS__OUTBOX_PATH=str(work / "k.sqlite3"))
        with process(command, env, port, cpu=0) as pid:
            run = await _kannel_load(
                port,
                pid,
                duration=args.duration,
                warmup=args.warmup,
                concurrency=args.concurrency,
                no_ids=args.no_ids,
            )
        results.append(_result("kannel", target, run))
    return results


async def _part_smpp(args: argparse.Namespace, redis_url: str, work: Path) -> list[Result]:
    results = []
    for target in ("hotline", "echo"):
        smsc_port = free_port()
        smsc = Smsc(smsc_port)
        await smsc.start()
        port = free_port()
        env = _smpp_env(
            hotline_env(redis_url, work, HOTLINE_SMS__OUTBOX_PATH=str(work / "s.sqlite3")),
            smsc_port,
            args.concurrency,
        )
        command = (
            _hotline_args(port)
            if target == "hotline"
            else _baseline("echo", str(smsc_port), str(args.concurrency), "0")
        )
        try:
            with process(command, env, port if target == "hotline" else None, cpu=0) as pid:
                esme = await asyncio.wait_for(smsc.bound, 20)
                run = await _smpp_load(
                    smsc,
                    esme,
                    pid,
                    duration=args.duration,
                    warmup=args.warmup,
                    concurrency=args.concurrency,
                )
        finally:
            await smsc.stop()
        results.append(_result("smpp", target, run))
    return results


async def _fill_outbox(url: str, count: int) -> None:
    from hotline.base.values import Money
    from hotline.store.outbox import Outbox

    outbox = Outbox(url)
    try:
        for n in range(count):
            await outbox.send(
                PHONES[n % len(PHONES)], "result.balance", {"balance": Money(1250)}, "zh-CN"
            )
    finally:
        await outbox.close()


def _clear_outbox(url: str) -> None:
    """An empty outbox at `url` (a PostgreSQL database given with --outbox-url)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("DROP TABLE IF EXISTS sms_outbox, sms_outbox_parts, hotline_migrations")
        )
    engine.dispose()


async def _part_outbox(args: argparse.Namespace, redis_url: str, work: Path) -> list[Result]:
    results = []
    url = args.outbox_url or f"sqlite:///{work / 'o.sqlite3'}"
    if args.outbox_url:
        _clear_outbox(url)
    await _fill_outbox(url, args.messages)
    for target in ("hotline", "echo"):
        smsc_port = free_port()
        smsc = Smsc(smsc_port)
        await smsc.start()
        port = free_port()
        store = {"HOTLINE_SMS__OUTBOX_URL": url}
        env = _smpp_env(hotline_env(redis_url, work, **store), smsc_port, args.window)
        command = (
            _hotline_args(port)
            if target == "hotline"
            else _baseline("echo", str(smsc_port), str(args.window), str(args.messages))
        )
        deadline = time.perf_counter() + 120
        try:
            with process(command, env, port if target == "hotline" else None, cpu=0):
                while len(smsc.submits) < args.messages and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
        finally:
            await smsc.stop()
        done = len(smsc.submits)
        seconds = smsc.submits[-1] - smsc.submits[0] if done > 1 else float("nan")
        results.append(
            Result(
                "outbox",
                target,
                done,
                args.messages - min(done, args.messages),
                round(seconds, 2),
                round((done - 1) / seconds, 1) if done > 1 else 0.0,
            )
        )
    return results


# ------------------------------------------------------------------------------ main


def _print(results: list[Result]) -> None:
    print(
        f"{'part':8} {'target':8} {'msgs':>7} {'err':>4} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'cpu ms':>7}"
    )
    for r in results:
        print(
            f"{r.part:8} {r.target:8} {r.messages:7d} {r.errors:4d} {r.per_second:9.1f} "
            f"{r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.cpu_ms:7.3f}"
        )
    for part in dict.fromkeys(r.part for r in results):
        hotline, base = [r for r in results if r.part == part][:2]
        ratio = hotline.per_second / base.per_second if base.per_second else float("nan")
        print(f"{part}: hotline {ratio:.2f}× {base.target}'s msg/s", end="")
        if hotline.p99_ms == hotline.p99_ms:  # not NaN
            print(f", p99 {hotline.p99_ms:.1f} vs {base.p99_ms:.1f} ms", end="")
        if hotline.cpu_ms == hotline.cpu_ms:
            print(f", CPU {hotline.cpu_ms:.3f} vs {base.cpu_ms:.3f} ms/msg", end="")
        print()


async def _run(args: argparse.Namespace) -> list[Result]:
    parts = {"kannel": _part_kannel, "smpp": _part_smpp, "outbox": _part_outbox}
    results: list[Result] = []
    pin(1)
    with _workdir() as work:
        redis_port = free_port()
        with process(redis_server(redis_port, work), dict(os.environ), redis_port, cpu=1):
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            for name in args.parts.split(","):
                results += await parts[name](args, redis_url, work)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="kannel,smpp,outbox")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--window", type=int, default=50, help="outbox: sms.send_window")
    parser.add_argument(
        "--outbox-url", help="outbox: a PostgreSQL URL (emptied first) instead of SQLite"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--no-ids", action="store_true", help="kannel: no message ids (diagnostic: no MO ledger)"
    )
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        kind, *rest = args.serve
        if kind == "minimal":
            _serve_minimal(int(rest[0]), rest[1])
        else:
            _serve_echo(int(rest[0]), int(rest[1]), int(rest[2]))
        return 0
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    import uvloop

    results = uvloop.run(_run(args))
    _print(results)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
