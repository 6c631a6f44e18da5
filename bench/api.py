"""API load benchmark: a signed `GET /api/v1/me/balance` beside a minimal handler.

    .venv/bin/python bench/api.py [--duration 8] [--concurrency 50] [--json FILE]
    .venv/bin/python bench/api.py --cpu [--requests 5000] [--rounds 5]   # in one process
    .venv/bin/python bench/api.py --cpu --profile hotline                # cProfile

Starts a private redis-server, then, one at a time, each target as its own process on a
free port (uvloop, one worker, pinned to CPU 0; the load generator and Redis on CPU 1):

- `hotline`: `hotline serve` with the SQLite ledger; a client registered with `hotline
  api clients add`, a subscriber signed in with the SMS code read from the outbox, so
  every request is the whole pipeline: JWT verification, one Redis round trip (one
  script call: revocations, client and subscriber windows), the balance from the warm
  cache, the body in the subscriber's language, metrics and the audit row (written in
  batches off the request path, but by the same process: its CPU counts);
- `minimal`: an aiohttp handler that verifies the same token (PyJWT, the same key) and
  returns a fixed JSON body. Like hotline (`api.tokens.Tokens`) it remembers a token it
  verified, by its exact text, checking only the expiry on a repeat — so both sides do
  the same cryptography and the ratio measures the rest.

It prints req/s, p50 and p99 for each and the ratio. Target: hotline ≥ 0.7× minimal's
req/s and p99 < 10 ms at 50 connections.

`--cpu` measures what a shared machine's load moves least: both targets as aiohttp
apps in this one process (hotline's `create_app` with the same settings as its `serve`
above; the minimal handler's app), fed raw HTTP/1.1 through `bench/step_cost.py`'s
in-memory transport, `--concurrency` connections at once, rounds interleaved; it prints
CPU µs per request (the audit writer's thread included: `process_time` counts every
thread) and the ratio minimal/hotline — what the req/s ratio would be on a CPU-bound
server; read the per-round ratios, each round runs every target once, back to back.
Redis is a real `redis-server` (its CPU not counted, as on the other core above).
`--targets` may add `floor`: hotline's own app answering `/healthz` (the platform's
middleware and router, no API). `--log-level INFO` measures with the JSON access log on (written to /dev/null; `serve` above runs at
WARNING).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _proc import cpu_seconds, free_port, hotline_env, pin, process, redis_server  # noqa: E402
from step_cost import _Transport  # noqa: E402

# This file is bench/api.py: off the path, so `import api` finds the channel package.
sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != HERE]

SECRET = "bench-api-token-secret"
PHONE = "+8613800138000"
PATH = "/api/v1/me/balance"
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@dataclass
class Result:
    target: str
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float = float("nan")  # server CPU time per request


def _minimal_app() -> Any:
    import jwt
    from aiohttp import web

    from api.tokens import AUDIENCE, ISSUER, derive_secret

    key = derive_secret(SECRET, "jwt")
    body = json.dumps({"status": "ok", "balance": {"minor": 1250, "currency": "CNY"}}).encode()

    verified: dict[str, int] = {}

    async def handler(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        expires = verified.get(token)
        if expires is None:
            try:
                claims = jwt.decode(
                    token, key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
                )
            except jwt.PyJWTError:
                return web.Response(status=401)
            expires = verified[token] = int(claims["exp"])
        if expires <= time.time():
            return web.Response(status=401)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(PATH, handler)
    return app


def _serve_minimal(port: int) -> None:
    import uvloop
    from aiohttp import web

    uvloop.install()
    web.run_app(_minimal_app(), host="127.0.0.1", port=port, print=None, access_log=None)


class _Raw:
    """One keep-alive connection written by hand, so the client costs little."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.request = (
            f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Accept-Language: zh-CN\r\n\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self) -> int:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
        await self.reader.readexactly(length)
        return int(head[9:12])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(
    port: int, token: str, duration: float, warmup: float, concurrency: int, pid: int
) -> Result:
    latencies: list[float] = []
    errors = 0
    measuring = False
    stop_at = 0.0

    async def loop(conn: _Raw) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status = await conn.get()
            if measuring:
                latencies.append(time.perf_counter() - started)
                errors += status != 200

    conns = [_Raw(port, token) for _ in range(concurrency)]
    stop_at = time.perf_counter() + warmup
    await asyncio.gather(*(loop(c) for c in conns))
    measuring = True
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    stop_at = started + duration
    await asyncio.gather(*(loop(c) for c in conns))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    for c in conns:
        c.close()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result("", len(latencies), errors, round(len(latencies) / elapsed, 1),
                  round(q[49] * 1000, 2), round(q[98] * 1000, 2),
                  round(cpu / len(latencies) * 1e6, 1))  # fmt: skip


def _sign_in(port: int, env: dict[str, str], outbox: Path) -> str:
    """Register a client, sign the demo subscriber in; the subscriber token."""
    import urllib.request

    hotline = shutil.which("hotline", path=str(Path(sys.executable).parent)) or "hotline"
    out = subprocess.run(
        [hotline, "api", "clients", "add", f"bench-{os.getpid()}", "--scopes", "balance:read"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    client_id = re.search(r"client_id:\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    secret = re.search(r"client_secret:\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}/api/v1"

    def post(path: str, body: dict[str, str], token: str | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(base + path, json.dumps(body).encode(), headers)
        with urllib.request.urlopen(req) as resp:
            answer: dict[str, str] = json.loads(resp.read())
            return answer

    client = post("/auth/client-token", {"grant_type": "client_credentials",
                  "client_id": client_id, "client_secret": secret})["access_token"]  # fmt: skip
    post("/auth/otp", {"phone": PHONE}, client)
    with sqlite3.connect(outbox) as db:
        vals = db.execute(
            "SELECT vals FROM sms_outbox WHERE kind='otp' ORDER BY id DESC"
        ).fetchone()
    code = json.loads(vals[0])["code"]["v"]
    return post("/auth/token", {"phone": PHONE, "code": code}, client)["access_token"]


# ------------------------------------------------------------------ --cpu: one process


def _hotline_env(redis_url: str, work: Path, port: int, level: str = "WARNING") -> dict[str, str]:
    """`hotline serve`'s environment, for the process above and for `--cpu` alike."""
    return hotline_env(
        redis_url, work,
        HOTLINE_PORT=str(port),
        HOTLINE_API__TOKEN_SECRET=SECRET,
        HOTLINE_API__DB_PATH=str(work / "api.sqlite3"),
        HOTLINE_API__CLIENT_RATE="100000000/minute",
        HOTLINE_API__SUBSCRIBER_RATE="100000000/minute",
        HOTLINE_SMS__OUTBOX_PATH=str(work / "outbox.sqlite3"),
        HOTLINE_BALANCE__FRESH_TTL="3600",
        HOTLINE_LOG_LEVEL=level,
    )  # fmt: skip


def _hotline_app(redis_url: str, work: Path, args: argparse.Namespace) -> Any:
    from hotline.base.config import load_settings
    from hotline.base.logs import setup_logging
    from hotline.web.app import create_app

    env = _hotline_env(redis_url, work, 8080, args.log_level)
    # Longer waits than production's: under valgrind (~50x slower) or on a loaded machine
    # they would answer 503; they change no instruction on the answered path.
    env |= {
        "HOTLINE_REDIS_TIMEOUT": "30",
        "HOTLINE_BALANCE__DEADLINE": "9",
        "HOTLINE_BALANCE__BULKHEAD_WAIT": "9",
        "HOTLINE_BALANCE__CONNECT_TIMEOUT": "30",
    }
    for name in [n for n in os.environ if n.startswith("HOTLINE_")]:
        del os.environ[name]
    os.environ.update({k: v for k, v in env.items() if k.startswith("HOTLINE_")})
    settings = load_settings()
    # As `hotline serve` with its output not a terminal: JSON lines to /dev/null.
    setup_logging(True, settings.log_level, stream=open(os.devnull, "w"))  # noqa: SIM115
    return create_app(settings)


def _subscriber_token() -> str:
    """A subscriber token as `POST /auth/token` issues it (the same secret, claims)."""
    from api.tokens import Tokens

    token, _ = Tokens(SECRET).issue(
        "subscriber", client="bench-client", client_name="bench",
        scopes=frozenset({"balance:read"}), ttl=24 * 3600, msisdn=PHONE,
    )  # fmt: skip
    return token


class _Memory:
    """One keep-alive connection into an app's `web.Server`, through memory."""

    def __init__(self, factory: Any, request: bytes, number: int) -> None:
        self.transport = _Transport(number)
        self.protocol = factory()
        self.protocol.connection_made(self.transport)
        self.request = request

    async def get(self) -> bytes:
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.transport.waiter = waiter
        self.protocol.data_received(self.request)
        return await waiter

    def close(self) -> None:
        self.protocol.connection_lost(None)


@dataclass
class _Target:
    name: str
    factory: Any
    request: bytes
    expect: bytes
    us: list[float] = field(default_factory=list)


async def _drive(target: _Target, requests: int, concurrency: int) -> int:
    each = max(1, requests // concurrency)

    async def one(number: int) -> None:
        conn = _Memory(target.factory, target.request, number)
        try:
            for _ in range(each):
                reply = await conn.get()
                if not reply.startswith(b"HTTP/1.1 200") or target.expect not in reply:
                    raise SystemExit(f"{target.name}: unexpected reply {reply[-300:]!r}")
        finally:
            conn.close()

    await asyncio.gather(*(one(n) for n in range(concurrency)))
    return each * concurrency


async def _in_process(args: argparse.Namespace, work: Path, redis_url: str) -> list[_Target]:
    import gc

    from aiohttp import web

    wanted = args.targets.split(",")
    token = _subscriber_token()
    signed = (
        f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept-Language: zh-CN\r\n\r\n"
    ).encode()
    runners: list[web.AppRunner] = []
    servers: dict[str, Any] = {}
    for name in {"minimal" if n == "minimal" else "hotline" for n in wanted}:
        app = _minimal_app() if name == "minimal" else _hotline_app(redis_url, work, args)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        runners.append(runner)
        servers[name] = runner.server
    made = {
        "hotline": _Target("hotline", servers.get("hotline"), signed, b'"minor":1250'),
        "minimal": _Target("minimal", servers.get("minimal"), signed, b'"minor": 1250'),
        # The platform's floor: hotline's app answering its cheapest route.
        "floor": _Target("floor", servers.get("hotline"), HEALTHZ, b'"status": "ok"'),
    }
    targets = [made[name] for name in wanted]
    try:
        for target in targets:  # warm-up: the balance cache, connections, the token
            await _drive(target, args.warmup_requests, args.concurrency)
        gc.collect()
        gc.freeze()  # as `hotline serve` does once listening
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile(time.process_time)
            target = next(t for t in targets if t.name == args.profile)
            profiler.enable()
            await _drive(target, args.requests, args.concurrency)
            profiler.disable()
            stats = pstats.Stats(profiler).strip_dirs().sort_stats(args.sort)
            if args.callees:
                stats.print_callees(args.callees)
            else:
                stats.print_stats(args.top)
            return []
        for round_no in range(args.rounds):
            start = round_no % len(targets)
            for target in targets[start:] + targets[:start]:
                before = time.process_time()
                done = await _drive(target, args.requests, args.concurrency)
                target.us.append((time.process_time() - before) / done * 1e6)
    finally:
        for runner in runners:
            await runner.cleanup()
    return targets


def _cpu(args: argparse.Namespace) -> None:
    import logging

    import uvloop

    logging.getLogger("aiohttp").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-api-cpu-") as tmp:
        work = Path(tmp)
        port = free_port()
        with process(redis_server(port, work), dict(os.environ), port, cpu=1):
            targets = uvloop.run(_in_process(args, work, f"redis://127.0.0.1:{port}/0"))
    if not targets or not args.rounds:
        return
    print(f"api --cpu: {args.rounds} rounds x {args.requests} requests, concurrency "
          f"{args.concurrency}, log level {args.log_level}: CPU µs per request")  # fmt: skip
    for t in targets:
        print(f"{t.name:8} min {min(t.us):7.1f}  median {statistics.median(t.us):7.1f}  "
              + " ".join(f"{u:.1f}" for u in t.us))  # fmt: skip
    named = {t.name: t for t in targets}
    if {"hotline", "minimal"} <= named.keys():
        h, m = named["hotline"].us, named["minimal"].us
        per_round = [b / a for a, b in zip(h, m, strict=True)]
        print(f"minimal/hotline by CPU: min-over-min {min(m) / min(h):.3f}, per round "
              + " ".join(f"{r:.3f}" for r in per_round) + " (target >= 0.7)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--serve-minimal", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", action="store_true", help="CPU per request in one process")
    parser.add_argument("--requests", type=int, default=5000, help="--cpu: per target, round")
    parser.add_argument("--rounds", type=int, default=5, help="--cpu: rounds")
    parser.add_argument("--warmup-requests", type=int, default=1000, help="--cpu: first")
    parser.add_argument(
        "--targets",
        default="hotline,minimal",
        help="--cpu: which, in order (also: floor, hotline's /healthz)",
    )
    parser.add_argument("--log-level", default="WARNING", help="--cpu: hotline's log level")
    parser.add_argument(
        "--profile", choices=("hotline", "minimal", "floor"), help="--cpu: cProfile"
    )
    parser.add_argument("--sort", default="tottime", help="--profile: sort key")
    parser.add_argument("--top", type=int, default=40, help="--profile: rows")
    parser.add_argument("--callees", metavar="REGEX", help="--profile: what these call")
    args = parser.parse_args(argv)
    if args.serve_minimal:
        _serve_minimal(args.serve_minimal)
        return 0
    if args.cpu:
        if args.profile:
            args.targets = args.profile
        _cpu(args)
        return 0
    import uvloop

    pin(1)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        work = Path(tmp)
        redis_port = free_port()
        with process(redis_server(redis_port, work), dict(os.environ), redis_port, cpu=1):
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            port = free_port()
            env = _hotline_env(redis_url, work, port)
            hotline = shutil.which("hotline", path=str(Path(sys.executable).parent)) or "hotline"
            with process([hotline, "serve", "--port", str(port)], env, port, cpu=0) as pid:
                token = _sign_in(port, env, work / "outbox.sqlite3")
                r = uvloop.run(
                    _load(port, token, args.duration, args.warmup, args.concurrency, pid)
                )
                r.target = "hotline"
                results.append(r)
            port = free_port()
            command = [sys.executable, __file__, "--serve-minimal", str(port)]
            with process(command, dict(os.environ), port, cpu=0) as pid:
                r = uvloop.run(
                    _load(port, token, args.duration, args.warmup, args.concurrency, pid)
                )
                r.target = "minimal"
                results.append(r)
    for r in results:
        print(f"{r.target:8} {r.rps:9.1f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms"
              f"  server CPU {r.server_cpu_us:6.1f} us/req  errors {r.errors}/{r.requests}")  # fmt: skip
    ratio = results[0].rps / results[1].rps
    cpu_ratio = results[1].server_cpu_us / results[0].server_cpu_us
    print(f"hotline/minimal: {ratio:.2f}x req/s, {cpu_ratio:.2f}x by server CPU per request "
          f"(target >= 0.7), hotline p99 "
          f"{results[0].p99_ms} ms (target < 10) at {args.concurrency} connections")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
