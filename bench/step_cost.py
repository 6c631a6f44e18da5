"""CPU cost of one USSD step, hotline against minimal handlers, measured in ONE process.

    python bench/step_cost.py [--requests 3000] [--rounds 5] [--concurrency 10]
    python bench/step_cost.py --profile hotline [--requests 3000]   # cProfile, top functions
    python bench/step_cost.py --callgrind [--requests 400]          # instructions per step

Wall-clock load (`bench/ussd.py`, `vs_hotline.sh`) swings by ±30 % on a shared machine; this
driver measures what does not: the CPU time (and, with `--callgrind`, the instructions) one
process spends per request. There is no load generator and no socket to the server: every
target is a real aiohttp app (its real `web.Server`, HTTP parser, router, middlewares,
response writer) fed raw HTTP/1.1 requests through an in-memory transport, `--concurrency`
keep-alive connections in flight at once, on uvloop. Redis is a real `redis-server` on a
free port (its own CPU is not counted, as under wrk where it runs on the other core).

Targets (all set up before the first round; rounds interleave them, start rotated):

- `min-step`: vs_hotline.sh's "min-step" anchor (pyservers.py `step --redis-mode pipe`):
  parse the form, redis-py pipeline GET + SET EX, reply a 4-line CON menu;
- `min-link`: the same step over hotline's own pipelined Redis link (`RedisLink`);
- `hotline`: `create_app` with the production defaults (JSON access log at INFO written to
  /dev/null, metrics, guards, pseudonyms; rate limits lifted as vs_hotline.sh does), the
  checkout's flows and prompts, a fresh SQLite ledger with the bench MSISDNs at 12.50;
- `hotline-an` (only when named in `--targets`): the same with `analytics.enabled`, its
  background flush counted too (it runs in the same loop).

Every connection plays whole sessions: dial (`text=""`) → menu (`CON`), then `1` → the
balance (`END …12.50…`); every reply is checked. Printed per target: µs of CPU per request
(min and median over rounds), GC collections and pause per 1 000 requests, and the ratio
`min-step µs / target µs` — the throughput ratio a CPU-bound server would show against
min-step (vs_hotline.sh's `r_min_step`, goal ≥ 0.80).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

_HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, _HERE)
from _proc import free_port, redis_server, wait_port  # noqa: E402

# bench/ivr.py would shadow the `ivr` channel package the app loads.
sys.path[:] = [p for p in sys.path if p not in (_HERE, "")]

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("min-step", "min-link", "hotline")
OPTIONAL = ("hotline-an",)  # hotline with operator analytics on (docs/analytics.md)
MSISDNS = ("+8613700000001", "+8613700000002", "+8613700000003", "+8613700000004")
BALANCE = "12.50"
STEP_MENU = "CON Welcome\n1. Main balance\n2. Data balance\n0. Exit"
SESSION_TTL = 180
HEAD_END = b"\r\n\r\n"
LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


# ----------------------------------------------------------------- in-memory transport


class _Transport(asyncio.Transport):
    """What aiohttp's `RequestHandler` writes to: collects the reply, wakes the sender."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self._peer = ("127.0.0.1", 40000 + number)
        self._buffer = bytearray()
        self._closing = False
        self.waiter: asyncio.Future[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data
        self._check()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self._buffer += chunk
        self._check()

    def _check(self) -> None:
        buffer = self._buffer
        end = buffer.find(HEAD_END)
        if end < 0:
            return
        found = LENGTH.search(buffer, 0, end + 2)
        total = end + 4 + (int(found.group(1)) if found else 0)
        if len(buffer) < total:
            return
        reply = bytes(buffer[:total])
        del buffer[:total]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(reply)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self._closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        if name == "sockname":
            return ("127.0.0.1", 8080)
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


class _Connection:
    """One keep-alive connection into a target's `web.Server`."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], path: str, number: int) -> None:
        self.transport = _Transport(number)
        self.protocol = factory()
        self.protocol.connection_made(self.transport)
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        ).encode()

    async def post(self, body: bytes) -> bytes:
        waiter = asyncio.get_running_loop().create_future()
        self.transport.waiter = waiter
        self.protocol.data_received(self.head + b"%d\r\n\r\n" % len(body) + body)
        reply: bytes = await waiter
        return reply

    def close(self) -> None:
        self.protocol.connection_lost(None)


# ------------------------------------------------------------------------ the targets


def _min_apps(redis_url: str) -> dict[str, Any]:
    import redis.asyncio as aioredis
    from aiohttp import web

    from hotline.store.redislink import RedisLink, link_address

    client = web.AppKey("client", aioredis.Redis)
    link_key = web.AppKey("link", RedisLink)

    async def step_pipe(request: web.Request) -> web.Response:
        form = await request.post()
        sid = form.get("sessionId", "")
        text = form.get("text", "")
        key = "ussd:step:" + str(sid)
        depth = 0 if not text else str(text).count("*") + 1
        state = b"%d|%s" % (depth, str(text).encode())
        async with request.app[client].pipeline(transaction=False) as p:
            p.get(key)
            p.set(key, state, ex=SESSION_TTL)
            await p.execute()
        return web.Response(text=STEP_MENU)

    async def step_link(request: web.Request) -> web.Response:
        form = await request.post()
        sid = form.get("sessionId", "")
        text = form.get("text", "")
        key = "ussd:step:" + str(sid)
        depth = 0 if not text else str(text).count("*") + 1
        state = b"%d|%s" % (depth, str(text).encode())
        link = request.app[link_key]
        await asyncio.gather(
            link.execute("GET", key), link.execute("SET", key, state, "EX", SESSION_TTL)
        )
        return web.Response(text=STEP_MENU)

    async def client_ctx(app: web.Application) -> Any:
        port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        app[client] = aioredis.Redis(host="127.0.0.1", port=port)
        yield
        await app[client].aclose()

    async def link_ctx(app: web.Application) -> Any:
        address = link_address(redis_url)
        assert address is not None
        app[link_key] = RedisLink(address)
        yield
        await app[link_key].close()

    pipe = web.Application()
    pipe.cleanup_ctx.append(client_ctx)
    pipe.router.add_post("/ussd", step_pipe)
    linked = web.Application()
    linked.cleanup_ctx.append(link_ctx)
    linked.router.add_post("/ussd", step_link)
    return {"min-step": pipe, "min-link": linked}


def _hotline_app(redis_url: str, workdir: Path, slow: bool = False, analytics: bool = False) -> Any:
    from hotline.base.config import load_settings
    from hotline.base.logs import setup_logging
    from hotline.web.app import create_app

    env = {
        "HOTLINE_REDIS_URL": redis_url,
        "HOTLINE_FLOWS_DIR": str(ROOT / "flows"),
        "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
        "HOTLINE_BALANCE__LEDGER_PATH": str(workdir / "ledger.sqlite3"),
        "HOTLINE_SECURITY__SUBSCRIBER_RATE": "100000000/second",
        "HOTLINE_BALANCE__SUBSCRIBER_RATE": "100000000/second",
        "HOTLINE_SECURITY__GATEWAY_RATE": "100000000/second",
        "HOTLINE_IVR__AUDIO_DIR": str(workdir / "audio"),
        "HOTLINE_IVR__WARM_PROMPTS": "false",
    }
    if slow:
        # Under valgrind (~50x slower, on a loaded machine) the production timeouts would
        # answer the busy sentence; longer ones change no instruction on the answered path.
        env["HOTLINE_REDIS_TIMEOUT"] = "30"
        env["HOTLINE_BALANCE__DEADLINE"] = "9"
        env["HOTLINE_BALANCE__BULKHEAD_WAIT"] = "9"
        env["HOTLINE_BALANCE__CONNECT_TIMEOUT"] = "30"
        # The balance cache's 5 s would expire a number of times that depends on the
        # machine's load: counts would move with it. Both trees of a comparison alike.
        env["HOTLINE_BALANCE__FRESH_TTL"] = "3600"
        # Background loops (plans' reconcile every 5 s, reminders' deferred sweeps) run a
        # number of times that depends on the wall time under valgrind: a warm-up-only run
        # and a longer one then differ by more than a few per cent of the requests' work.
        env["HOTLINE_PLANS__RECONCILE_INTERVAL"] = "3600"
        env["HOTLINE_REMINDERS__SWEEP_EVERY"] = "3600"
    for name in [n for n in os.environ if n.startswith("HOTLINE_")]:
        del os.environ[name]
    os.environ.update(env)
    hotline = shutil.which("hotline", path=str(Path(sys.executable).parent)) or "hotline"
    for msisdn in MSISDNS:
        subprocess.run(
            [hotline, "ledger", "set", msisdn, "--main", BALANCE],
            check=True,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
        )
    settings = load_settings()
    if analytics:  # the same settings, analytics on (its background task runs in the loop)
        on = settings.analytics.model_copy(update={"enabled": True})
        settings = settings.model_copy(update={"analytics": on})
    # As `hotline serve` with its output not a terminal: JSON lines, INFO, access log on.
    setup_logging(True, settings.log_level, stream=open(os.devnull, "w"))  # noqa: SIM115
    return create_app(settings)


def _analytics_drain(app: Any) -> Callable[[], Awaitable[None]]:
    """Write and count what the round's turns left in analytics' buffer (settle_after
    would otherwise push that work into another target's round)."""
    from hotline.analytics.recorder import RECORDER

    async def drain() -> None:
        recorder = app[RECORDER]
        await recorder.flush()
        await recorder.settle(now=time.time() + 100_000)

    return drain


# ----------------------------------------------------------------------- measurement


@dataclass
class Target:
    name: str
    path: str
    factory: Callable[[], asyncio.Protocol]
    sessions: int = 0
    us: list[float] = field(default_factory=list)
    gc_runs: list[float] = field(default_factory=list)
    gc_ms: list[float] = field(default_factory=list)
    gc_max_ms: float = 0.0
    # Work the target left for later, done inside its own round (analytics' settle).
    drain: Callable[[], Awaitable[None]] | None = None


class _GcClock:
    """Collections and their pause time, from `gc.callbacks`."""

    def __init__(self) -> None:
        self.runs = 0
        self.seconds = 0.0
        self.longest = 0.0
        self._started = 0.0
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.runs += 1
            self.seconds += pause
            self.longest = max(self.longest, pause)

    def reset(self) -> None:
        self.runs, self.seconds, self.longest = 0, 0.0, 0.0


def _form(sid: str, msisdn: str, text: str) -> bytes:
    return (
        f"sessionId={sid}&serviceCode=%2A100%23&phoneNumber={quote(msisdn)}"
        f"&networkCode=46000&text={text}"
    ).encode()


async def _drive(target: Target, requests: int, concurrency: int) -> None:
    """`requests` requests as whole 2-step sessions over `concurrency` connections."""
    sessions_each = max(1, requests // (2 * concurrency))

    async def one(number: int) -> None:
        conn = _Connection(target.factory, target.path, number)
        try:
            for _ in range(sessions_each):
                target.sessions += 1
                sid = f"sc{os.getpid()}_{target.name}_{number}_{target.sessions}"
                msisdn = MSISDNS[target.sessions % len(MSISDNS)]
                menu = await conn.post(_form(sid, msisdn, ""))
                if b" 200 OK" not in menu[:20] or b"\r\n\r\nCON " not in menu:
                    raise SystemExit(f"{target.name}: bad dial reply {menu[-200:]!r}")
                if not target.name.startswith("hotline"):
                    await conn.post(_form(sid, msisdn, "1"))
                    continue
                end = await conn.post(_form(sid, msisdn, "1"))
                if b"\r\n\r\nEND " not in end or BALANCE.encode() not in end:
                    raise SystemExit(f"{target.name}: bad balance reply {end[-200:]!r}")
        finally:
            conn.close()

    await asyncio.gather(*(one(n) for n in range(concurrency)))


async def _measure(args: argparse.Namespace, workdir: Path, redis_url: str) -> list[Target]:
    from aiohttp import web

    wanted = [t for t in args.targets.split(",") if t]
    apps: dict[str, Any] = {}
    if {"min-step", "min-link"} & set(wanted):
        apps.update(_min_apps(redis_url))
    if "hotline" in wanted:
        apps["hotline"] = _hotline_app(redis_url, workdir, args.slow)
    if "hotline-an" in wanted:
        apps["hotline-an"] = _hotline_app(redis_url, workdir, args.slow, analytics=True)
    runners: list[web.AppRunner] = []
    targets: list[Target] = []
    for name in wanted:
        runner = web.AppRunner(apps[name], access_log=None, handle_signals=False)
        await runner.setup()
        runners.append(runner)
        server = runner.server
        assert server is not None
        path = "/ussd/africastalking" if name.startswith("hotline") else "/ussd"
        targets.append(Target(name, path, server))
        if name == "hotline-an":
            targets[-1].drain = _analytics_drain(apps[name])
    try:
        for target in targets:  # warm-up: caches, connection pools, the ledger
            await _drive(target, args.warmup, args.concurrency)
        gc.collect()
        gc.freeze()  # as `hotline serve` does once listening
        clock = _GcClock()
        if args.profile:
            await _profile(next(t for t in targets if t.name == args.profile), args)
            return targets
        for round_no in range(args.rounds):
            start = round_no % len(targets)
            for target in targets[start:] + targets[:start]:
                clock.reset()
                before = time.process_time()
                await _drive(target, args.requests, args.concurrency)
                if target.drain is not None:
                    await target.drain()
                spent = time.process_time() - before
                done = 2 * args.concurrency * max(1, args.requests // (2 * args.concurrency))
                target.us.append(spent / done * 1e6)
                target.gc_runs.append(clock.runs / done * 1000)
                target.gc_ms.append(clock.seconds / done * 1e6)
                target.gc_max_ms = max(target.gc_max_ms, clock.longest * 1000)
    finally:
        for runner in runners:
            await runner.cleanup()
    return targets


async def _profile(target: Target, args: argparse.Namespace) -> None:
    import cProfile
    import pstats

    # CPU time, not wall time: on a shared machine a descheduled process would charge
    # whatever function it was in with the time other processes ran.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    await _drive(target, args.requests, args.concurrency)
    profiler.disable()
    if args.dump:
        profiler.dump_stats(args.dump)
    stats = pstats.Stats(profiler).strip_dirs().sort_stats(args.sort)
    if args.callees:
        stats.print_callees(args.callees)
    elif args.callers:
        stats.print_callers(args.callers)
    else:
        stats.print_stats(args.top)


def _report(targets: list[Target], args: argparse.Namespace) -> None:
    base = next((t for t in targets if t.name == "min-step"), None)
    print(
        f"step_cost: {args.rounds} rounds x {args.requests} requests, "
        f"concurrency {args.concurrency}, CPU µs per request (this process; Redis apart)"
    )
    print(f"{'target':<10}{'min µs':>9}{'median µs':>11}{'gc/1k req':>11}{'gc µs/req':>11}"
          f"{'gc max ms':>11}{'r_min_step':>12}")  # fmt: skip
    base_min = min(base.us) if base else float("nan")
    for t in targets:
        ratio = base_min / min(t.us) if base else float("nan")
        print(
            f"{t.name:<10}{min(t.us):>9.1f}{statistics.median(t.us):>11.1f}"
            f"{statistics.median(t.gc_runs):>11.2f}{statistics.median(t.gc_ms):>11.2f}"
            f"{t.gc_max_ms:>11.2f}{ratio:>12.3f}"
        )
    hotline = next((t for t in targets if t.name == "hotline"), None)
    if base and hotline:
        per_round = [b / h for b, h in zip(base.us, hotline.us, strict=True)]
        if per_round:
            print(
                "hotline r_min_step per round: "
                + " ".join(f"{r:.3f}" for r in per_round)
                + f"  (median {statistics.median(per_round):.3f})"
            )
    with_an = next((t for t in targets if t.name == "hotline-an"), None)
    if hotline and with_an:
        extra = [a - h for a, h in zip(with_an.us, hotline.us, strict=True)]
        print(
            "hotline-an - hotline per round (µs CPU): "
            + " ".join(f"{e:+.1f}" for e in extra)
            + f"  (median {statistics.median(extra):+.1f})"
        )


def _callgrind(args: argparse.Namespace) -> None:
    """Instructions per request: each target run twice under callgrind (warm-up only, then
    warm-up + `--requests`), the difference divided by the requests. The runs go in
    parallel, on a copy of the checkout taken now (edit freely while they run)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    names = [t for t in args.targets.split(",") if t]
    with tempfile.TemporaryDirectory(prefix="step-cost-cg-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(
            ROOT, tree, ignore=shutil.ignore_patterns(".venv", ".git", "var", "__pycache__")
        )
        env = {**os.environ, "PYTHONPATH": str(tree)}
        runs: dict[tuple[str, int], tuple[subprocess.Popen[str], Path]] = {}
        for name in names:
            for requests in (0, args.requests):
                out = Path(tmp) / f"{name}-{requests}.out"
                cmd = [
                    valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, str(tree / "bench" / "step_cost.py"), "--targets", name,
                    "--rounds", "1", "--requests", str(requests), "--warmup",
                    str(args.warmup), "--concurrency", str(args.concurrency), "--quiet",
                    "--slow",
                ]  # fmt: skip
                proc = subprocess.Popen(
                    cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                )
                runs[(name, requests)] = (proc, out)
        totals: dict[tuple[str, int], int] = {}
        for key, (proc, _out) in runs.items():
            _, err = proc.communicate()
            found = re.search(r"Collected : (\d+)", err)
            if proc.returncode != 0 or found is None:
                raise SystemExit(f"callgrind run {key} failed:\n{err[-2000:]}")
            totals[key] = int(found.group(1))
    counts = {n: (totals[(n, args.requests)] - totals[(n, 0)]) / args.requests for n in names}
    for name, value in counts.items():
        ratio = counts["min-step"] / value if "min-step" in counts else float("nan")
        print(f"{name:<10}{value / 1000:>10.1f} k instructions per request  r_min_step {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per target and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help=f"of {', '.join(TARGETS + OPTIONAL)}"
    )
    parser.add_argument("--profile", choices=TARGETS + OPTIONAL, help="cProfile one target instead")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--callees", metavar="REGEX", help="with --profile: what these call")
    parser.add_argument("--callers", metavar="REGEX", help="with --profile: who calls these")
    parser.add_argument("--dump", metavar="FILE", help="with --profile: save the raw stats")
    parser.add_argument("--callgrind", action="store_true", help="count instructions")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--slow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile:
        args.targets = args.profile
    if args.callgrind:
        if args.requests <= 0:
            raise SystemExit("--callgrind needs --requests > 0")
        _callgrind(args)
        return
    if args.requests <= 0:
        args.rounds = 0
    import uvloop

    logging.getLogger("aiohttp").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="step-cost-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        redis = subprocess.Popen(
            redis_server(port, workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_port(port, redis)
            targets = uvloop.run(_measure(args, workdir, f"redis://127.0.0.1:{port}/0"))
        finally:
            redis.terminate()
            redis.wait()
    if not args.profile and not args.quiet and args.rounds:
        _report(targets, args)


if __name__ == "__main__":
    main()
