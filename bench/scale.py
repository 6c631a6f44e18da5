"""Scale-out: complete USSD sessions/s with 1 and 2 workers, a soak, and a worker killed mid-load.

    .venv/bin/python bench/scale.py [--seconds 10] [--rounds 3] [--connections 64] [--soak 60]
    .venv/bin/python bench/scale.py --soak 300          # the 5-minute soak of issue #5

Everything runs on loopback: a private redis-server, `hotline serve --workers N` as a real
subprocess, and a load client in this process (asyncio streams over keep-alive connections;
the kernel spreads connections over workers, so the client opens many). One session is the
real conversation `dial` → `1` (main balance) → `END`, on the six demo subscribers. In one run:

1. bare: a bare aiohttp handler (`CON hello`) with 1 and 2 workers, same client: hotline's
   figures read as ratios of it, and it shows the client is not what limits hotline;
2. hotline with 1 and 2 workers: sessions/s, requests/s, latency percentiles;
3. fault: 2 workers under load, one killed with SIGKILL half-way. Requests on its
   connections fail (counted); the client retries such a request once on a new connection
   and checks the screen is the one the session was at (state in Redis, so none is lost);
4. soak: 2 workers at a fixed session rate for `--soak` seconds: errors, and RSS of the
   workers after warm-up vs at the end.

The per-subscriber and per-gateway limits are raised for the run (they are per worker and
would otherwise be what is measured). The client shares the 2 cores with the workers and
Redis, which caps the 2-worker ratio below what a separate load host would show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from _proc import free_port, hotline_env, redis_server

ROOT = Path(__file__).resolve().parent.parent
PHONES = [f"+86138001380{n:02d}" for n in (0, 1, 2, 4, 5)]  # 03 is suspended: also fine
PATH = "/ussd/africastalking"


# ---------------------------------------------------------------- processes


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            redis_server(self.port, workdir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _wait_port(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def _wait_healthy(port: int, workers: int, within: float = 30.0) -> None:
    """Wait until `workers` distinct pids answer /healthz."""
    import urllib.request

    seen: set[int] = set()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and len(seen) < workers:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                seen.add(int(json.loads(r.read())["pid"]))
        except OSError:
            time.sleep(0.05)
    if len(seen) < workers:
        raise SystemExit(f"only {len(seen)} of {workers} workers answered")


class Service:
    """`hotline serve --workers N` (or the bare app) as a subprocess."""

    def __init__(self, workers: int, redis_url: str, workdir: Path, bare: bool = False) -> None:
        self.port = free_port()
        self.workers = workers
        env = hotline_env(
            redis_url,
            workdir,
            HOTLINE_JSON_LOGS="true",
            TMPDIR=str(workdir),  # the supervisor's metrics directory, removed with it
        )
        if bare:
            cmd = [sys.executable, __file__, "--bare-server", str(self.port), str(workers)]
        else:
            cmd = [
                sys.executable,
                "-m",
                "hotline",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--shutdown-timeout",
                "10",
            ]
        self.log = (workdir / f"serve-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT
        )
        _wait_healthy(self.port, workers)

    def worker_pids(self) -> list[int]:
        if self.workers == 1:
            return [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        pids = [int(p) for p in children.split()]
        # multiprocessing's resource tracker is not a worker: workers listen on the port.
        return [pid for pid in pids if _listens(pid, self.port)] or pids

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.log.close()
        return code


def _listens(pid: int, port: int) -> bool:
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return False
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[1].endswith(wanted) and cols[3] == "0A" and f"socket:[{cols[9]}]" in inodes:
                return True
    return False


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- bare server


def bare_server(port: int, workers: int) -> None:
    """The baseline: the least an aiohttp worker can do per request, same process model."""
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="CON hello")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"pid": os.getpid()})

    def run() -> None:
        import uvloop

        uvloop.install()
        app = web.Application()
        app.router.add_post(PATH, hello)
        app.router.add_get("/healthz", health)
        web.run_app(app, host="127.0.0.1", port=port, reuse_port=True, print=None, access_log=None)

    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            run()
            os._exit(0)
        children.append(pid)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        os.waitpid(child, 0)


# ---------------------------------------------------------------- load client


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Tally:
    sessions: int = 0
    requests: int = 0
    errors: int = 0
    retried: int = 0
    wrong_state: int = 0
    latencies: list[float] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        self.sessions += other.sessions
        self.requests += other.requests
        self.errors += other.errors
        self.retried += other.retried
        self.wrong_state += other.wrong_state
        self.latencies.extend(other.latencies)


def _form(session: str, phone: str, text: str) -> bytes:
    return urllib.parse.urlencode(
        {
            "sessionId": session,
            "serviceCode": "*100#",
            "phoneNumber": phone,
            "networkCode": "46000",
            "text": text,
        }
    ).encode()


async def _step(conn: Connection, body: bytes, expect: bytes, tally: Tally, retry: bool) -> None:
    started = time.perf_counter()
    try:
        reply = await conn.post(body)
    except (OSError, asyncio.IncompleteReadError, RuntimeError):
        tally.errors += 1
        conn.close()
        if not retry:
            raise
        tally.retried += 1
        reply = await conn.post(body)  # a new connection, maybe another worker
    tally.latencies.append(time.perf_counter() - started)
    tally.requests += 1
    if not reply.startswith(expect):
        tally.wrong_state += 1


async def _client(
    port: int,
    ident: str,
    until: float,
    tally: Tally,
    *,
    bare: bool,
    retry: bool,
    interval: float = 0.0,
    offset: float = 0.0,
    max_sessions: int = 1_000_000,
) -> None:
    conn = Connection(port)
    n = 0
    next_at = time.monotonic() + offset  # staggered, so a fixed rate is not a burst
    try:
        while time.monotonic() < until and n < max_sessions:
            if interval:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            session = f"{ident}-{n}"
            phone = PHONES[n % len(PHONES)]
            n += 1
            try:
                if bare:
                    await _step(conn, _form(session, phone, ""), b"CON ", tally, retry)
                    await _step(conn, _form(session, phone, "1"), b"CON ", tally, retry)
                else:
                    await _step(conn, _form(session, phone, ""), b"CON ", tally, retry)
                    await _step(conn, _form(session, phone, "1"), b"END ", tally, retry)
            except (OSError, asyncio.IncompleteReadError, RuntimeError):
                conn.close()
                continue
            tally.sessions += 1
    finally:
        conn.close()


async def load(
    port: int,
    seconds: float,
    connections: int,
    *,
    bare: bool = False,
    retry: bool = False,
    rate: float = 0.0,
    tag: str = "s",
) -> tuple[Tally, float]:
    until = time.monotonic() + seconds
    tallies = [Tally() for _ in range(connections)]
    interval = connections / rate if rate else 0.0
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _client(
                port,
                f"{tag}{i}-{os.getpid()}-{time.time_ns()}",
                until,
                tallies[i],
                bare=bare,
                retry=retry,
                interval=interval,
                offset=interval * i / connections,
            )
            for i in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    total = Tally()
    for t in tallies:
        total.merge(t)
    return total, elapsed


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _row(name: str, tally: Tally, elapsed: float) -> dict[str, float | str]:
    return {
        "run": name,
        "sessions_per_s": tally.sessions / elapsed,
        "requests_per_s": tally.requests / elapsed,
        "p50_ms": _pct(tally.latencies, 0.50),
        "p95_ms": _pct(tally.latencies, 0.95),
        "p99_ms": _pct(tally.latencies, 0.99),
        "errors": tally.errors,
        "wrong_state": tally.wrong_state,
    }


def _print(row: dict[str, float | str]) -> None:
    print(
        f"  {row['run']:<22} {row['sessions_per_s']:>9.0f} sess/s {row['requests_per_s']:>9.0f} req/s"
        f"  p50 {row['p50_ms']:6.2f} ms  p95 {row['p95_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms"
        f"  errors {row['errors']}  wrong {row['wrong_state']}"
        + (
            f"  worker CPU {row['worker_cpu_ms_per_session']:.2f} ms/session on "
            f"{row['worker_cores_used']:.2f} cores"
            if "worker_cpu_ms_per_session" in row
            else ""
        ),
        flush=True,
    )


# ---------------------------------------------------------------- phases


@dataclass
class Args:
    seconds: float
    connections: int
    soak: float
    soak_rate: float
    json_out: Path | None
    rounds: int


def _throughput(
    redis: Redis, workdir: Path, args: Args, bare: bool
) -> tuple[dict[str, float | str], dict[str, float | str]]:
    """1 and 2 workers, both started once, measured alternately `rounds` times.

    Alternating and taking the median per side keeps a noisy neighbour (another process
    on this 2-core machine) from landing on one side only.
    """
    one = Service(1, redis.url, workdir, bare=bare)
    two = Service(2, redis.url, workdir, bare=bare)
    kind = "bare" if bare else "hotline"
    per: dict[int, list[dict[str, float | str]]] = {1: [], 2: []}
    try:
        for service in (one, two):
            asyncio.run(load(service.port, min(2.0, args.seconds), args.connections, bare=bare))
        for r in range(args.rounds):
            for workers, service in ((1, one), (2, two)):
                pids = service.worker_pids() if not bare else []
                cpu0 = _cpu_seconds(pids)
                tally, elapsed = asyncio.run(
                    load(service.port, args.seconds, args.connections, bare=bare, tag=f"t{r}")
                )
                row = _row(f"{kind} {workers}w round {r + 1}", tally, elapsed)
                if pids and tally.sessions:
                    row["worker_cpu_ms_per_session"] = (
                        (_cpu_seconds(pids) - cpu0) * 1000 / tally.sessions
                    )
                    row["worker_cores_used"] = (_cpu_seconds(pids) - cpu0) / elapsed
                _print(row)
                per[workers].append(row)
    finally:
        one.stop()
        two.stop()
    medians = []
    for workers in (1, 2):
        rows = sorted(per[workers], key=lambda row: float(row["sessions_per_s"]))
        median = dict(rows[len(rows) // 2])
        median["run"] = f"{kind} {workers} worker{'s' * (workers > 1)} (median)"
        _print(median)
        medians.append(median)
    return medians[0], medians[1]


def _fault(redis: Redis, workdir: Path, args: Args) -> dict[str, object]:
    service = Service(2, redis.url, workdir)
    try:
        victim = service.worker_pids()[0]

        async def run() -> tuple[Tally, float]:
            task = asyncio.create_task(
                load(service.port, args.seconds, args.connections, retry=True, tag="f")
            )
            await asyncio.sleep(args.seconds / 2)
            os.kill(victim, signal.SIGKILL)
            return await task

        tally, elapsed = asyncio.run(run())
        time.sleep(3)
        replaced = service.worker_pids()
        code = service.stop()
    except BaseException:
        service.stop()
        raise
    row = _row("fault: kill 1 of 2", tally, elapsed)
    _print(row)
    result: dict[str, object] = {
        **row,
        "retried_ok": tally.retried,
        "victim": victim,
        "workers_after": len(replaced),
        "replacement_started": victim not in replaced and len(replaced) == 2,
        "exit_code": code,
    }
    print(
        f"    killed worker {victim}; {tally.errors} requests failed on its connections, "
        f"{tally.retried} retried on a new connection; screens wrong after retry: "
        f"{tally.wrong_state}; supervisor replaced it: {result['replacement_started']}"
    )
    return result


def _soak(redis: Redis, workdir: Path, args: Args) -> dict[str, object]:
    service = Service(2, redis.url, workdir)
    connections = max(4, min(args.connections, int(args.soak_rate)))
    warmup = min(30.0, args.soak * 0.1)
    try:
        pids = service.worker_pids()

        async def run() -> tuple[Tally, float, int]:
            task = asyncio.create_task(
                load(service.port, args.soak, connections, rate=args.soak_rate, tag="k")
            )
            await asyncio.sleep(warmup)
            rss0 = sum(_rss_kib(p) for p in pids)
            tally, elapsed = await task
            return tally, elapsed, rss0

        tally, elapsed, rss_start = asyncio.run(run())
        rss_end = sum(_rss_kib(p) for p in pids)
    finally:
        code = service.stop()
    growth = (rss_end - rss_start) / rss_start * 100 if rss_start else float("nan")
    row = _row(f"soak {args.soak:.0f}s @{args.soak_rate:.0f}/s", tally, elapsed)
    _print(row)
    print(
        f"    RSS of 2 workers: {rss_start / 1024:.1f} MiB after {warmup:.0f}s warm-up → "
        f"{rss_end / 1024:.1f} MiB at the end ({growth:+.1f}%); exit code {code}"
    )
    return {
        **row,
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_end,
        "rss_growth_pct": growth,
        "exit_code": code,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per throughput run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating 1/2-worker rounds")
    parser.add_argument("--soak", type=float, default=60.0, help="soak seconds (300 = issue #5)")
    parser.add_argument("--soak-rate", type=float, default=100.0, help="sessions/s in the soak")
    parser.add_argument("--skip", action="append", default=[], choices=["bare", "fault", "soak"])
    parser.add_argument("--json", type=Path, dest="json_out")
    parser.add_argument("--bare-server", nargs=2, type=int, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.bare_server:
        bare_server(*ns.bare_server)
        return 0
    if not (
        0 < ns.seconds <= 120
        and 1 <= ns.connections <= 512
        and 0 <= ns.soak <= 3600
        and 1 <= ns.rounds <= 20
    ):
        parser.error(
            "bounded runs only: --seconds ≤ 120, --connections ≤ 512, --soak ≤ 3600, --rounds ≤ 20"
        )
    args = Args(ns.seconds, ns.connections, ns.soak, ns.soak_rate, ns.json_out, ns.rounds)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results: dict[str, object] = {"cpus": os.cpu_count(), "args": vars(ns) | {"json_out": None}}
    with tempfile.TemporaryDirectory(prefix="hotline-scale-") as tmp:
        workdir = Path(tmp)
        redis = Redis(workdir)
        try:
            print(
                f"complete USSD sessions (dial → 1 → END), {args.connections} connections, "
                f"{args.seconds:.0f}s per run, {args.rounds} rounds, {os.cpu_count()} CPUs"
            )
            rows = {}
            if "bare" not in ns.skip:
                rows["bare1"], rows["bare2"] = _throughput(redis, workdir, args, True)
            rows["hot1"], rows["hot2"] = _throughput(redis, workdir, args, False)
            results["throughput"] = rows
            scale = float(rows["hot2"]["sessions_per_s"]) / float(rows["hot1"]["sessions_per_s"])
            results["scale_2_vs_1"] = scale
            print(f"  hotline 2 workers / 1 worker: {scale:.2f}x (target ≥ 1.7x)")
            if "bare" not in ns.skip:
                share = float(rows["hot1"]["requests_per_s"]) / float(
                    rows["bare1"]["requests_per_s"]
                )
                results["hotline_vs_bare_1_worker"] = share
                print(
                    f"  hotline 1 worker = {share:.0%} of the bare handler's req/s (the bare "
                    "runs are bound by this one-process client, not by the workers)"
                )
            if "fault" not in ns.skip:
                results["fault"] = _fault(redis, workdir, args)
            if "soak" not in ns.skip and args.soak > 0:
                results["soak"] = _soak(redis, workdir, args)
        finally:
            redis.stop()
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
