"""API load benchmark: a signed `GET /api/v1/me/balance` beside a minimal handler.

    .venv/bin/python bench/api.py [--duration 8] [--concurrency 50] [--json FILE]

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
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _proc import cpu_seconds, free_port, hotline_env, pin, process, redis_server  # noqa: E402

# This file is bench/api.py: off the path, so `import api` finds the channel package.
sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != HERE]

SECRET = "bench-api-token-secret"
PHONE = "+8613800138000"
PATH = "/api/v1/me/balance"


@dataclass
class Result:
    target: str
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float = float("nan")  # server CPU time per request


def _serve_minimal(port: int) -> None:
    import jwt
    import uvloop
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
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--serve-minimal", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_minimal:
        _serve_minimal(args.serve_minimal)
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
            env = hotline_env(
                redis_url, work,
                HOTLINE_PORT=str(port),
                HOTLINE_API__TOKEN_SECRET=SECRET,
                HOTLINE_API__DB_PATH=str(work / "api.sqlite3"),
                HOTLINE_API__CLIENT_RATE="100000000/minute",
                HOTLINE_API__SUBSCRIBER_RATE="100000000/minute",
                HOTLINE_SMS__OUTBOX_PATH=str(work / "outbox.sqlite3"),
                HOTLINE_BALANCE__FRESH_TTL="3600",
            )  # fmt: skip
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
