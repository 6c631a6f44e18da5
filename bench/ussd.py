"""USSD load benchmark: `hotline serve` against two baselines measured in the same run.

    python bench/ussd.py [--duration 8] [--concurrency 10] [--json FILE]

Starts a private redis-server on a free port, then, one at a time, each target as its own
process on its own port (uvloop, one worker):

- `hotline`: `hotline serve` with `HOTLINE_REDIS_URL`, the SQLite ledger and the real
  flow, catalogs and USSD layout;
- `minimal`: an aiohttp handler doing only the unavoidable work of a USSD step: parse the
  form, one Redis GET, one SET with a TTL, reply;
- `bare`: an aiohttp handler that answers a constant `CON` text;
- `minimal-link` (diagnostic, via `--targets`): `minimal` talking to Redis over hotline's
  own pipelined connection (`hotline.store.redislink`) instead of redis-py's client — what the
  unavoidable work costs with the cheapest client, to show where hotline's margin comes from.

The load generator (this process, uvloop) runs `--concurrency` loops, each playing whole
sessions: dial (`text=""`) → main menu, then `1` → balance (`END …`), with a new
`sessionId` per session over the demo subscribers. It prints req/s, p50 and p99 for each
target and the ratios; targets for one worker: hotline ≥ 0.8× minimal's req/s and
p99 < 5 ms at 10 connections. The server process is pinned to CPU 0 and the load generator
and redis-server to CPU 1 when the machine has two or more, so the server under test has
a core of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _proc import cpu_seconds, free_port, hotline_env, pin, process, redis_server
from _rounds import by_target

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
PATH = "/ussd/africastalking"
PHONES = tuple(f"+86138001380{n:02d}" for n in (0, 1, 2, 4, 5))  # demo numbers, not suspended
SESSION_TTL = 180
RECORD_PAD = b"x" * 480


# --------------------------------------------------------------- baseline servers


def _serve_baseline(kind: str, port: int, redis_url: str) -> None:
    """Run one baseline server (in its own process) until SIGTERM."""
    import redis.asyncio as aioredis
    import uvloop
    from aiohttp import web

    from hotline.store.redislink import RedisLink, link_address

    async def bare(request: web.Request) -> web.Response:
        return web.Response(text="CON hello", content_type="text/plain", charset="utf-8")

    async def minimal(request: web.Request) -> web.Response:
        form = await request.post()
        key = "bench:sess:" + str(form["sessionId"])
        client = request.app[CLIENT]
        previous = await client.get(key)
        # A record about the size of hotline's (~500 bytes of JSON).
        record = f"{form['text']!s}|{previous!r:.16}".encode() + RECORD_PAD
        await client.set(key, record, ex=SESSION_TTL)
        return web.Response(text="CON hello", content_type="text/plain", charset="utf-8")

    async def minimal_link(request: web.Request) -> web.Response:
        form = await request.post()
        key = "bench:sess:" + str(form["sessionId"])
        link = request.app[LINK]
        previous = await link.execute("GET", key)
        record = f"{form['text']!s}|{previous!r:.16}".encode() + RECORD_PAD
        await link.execute("SET", key, record, "EX", SESSION_TTL)
        return web.Response(text="CON hello", content_type="text/plain", charset="utf-8")

    CLIENT = web.AppKey("CLIENT", aioredis.Redis)
    LINK = web.AppKey("LINK", RedisLink)

    async def redis_ctx(app: web.Application) -> object:
        app[CLIENT] = aioredis.from_url(redis_url, max_connections=256)
        yield
        await app[CLIENT].aclose()

    async def link_ctx(app: web.Application) -> object:
        address = link_address(redis_url)
        assert address is not None
        app[LINK] = RedisLink(address)
        yield
        await app[LINK].close()

    app = web.Application()
    if kind == "minimal":
        app.cleanup_ctx.append(redis_ctx)  # type: ignore[arg-type]
        app.router.add_post(PATH, minimal)
    elif kind == "minimal-link":
        app.cleanup_ctx.append(link_ctx)  # type: ignore[arg-type]
        app.router.add_post(PATH, minimal_link)
    else:
        app.router.add_post(PATH, bare)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# ------------------------------------------------------------------- processes


# ------------------------------------------------------------------------ load


@dataclass
class Result:
    target: str
    requests: int
    sessions: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float = float("nan")  # server CPU time per request


class _RawConnection:
    """One keep-alive HTTP/1.1 connection written by hand: a load generator that costs
    the client a fraction of what aiohttp's client does, so the servers become the
    bottleneck (`--client raw`). It speaks just enough HTTP for these servers' replies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, form: dict[str, str]) -> tuple[int, str]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = urlencode(form).encode()
        self.writer.write(
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, (await self.reader.readexactly(length)).decode()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(
    port: int,
    *,
    duration: float,
    warmup: float,
    concurrency: int,
    check: bool,
    pid: int = 0,
    client: str = "aiohttp",
) -> Result:
    import aiohttp

    url = f"http://127.0.0.1:{port}{PATH}"
    latencies: list[float] = []
    counters = {"sessions": 0, "errors": 0}
    measuring = False
    stop_at = 0.0

    async def post(sender: Any, form: dict[str, str]) -> str:
        started = time.perf_counter()
        if isinstance(sender, _RawConnection):
            status, body = await sender.post(form)
        else:
            async with sender.post(url, data=form) as response:
                body = await response.text()
                status = response.status
        if measuring:
            latencies.append(time.perf_counter() - started)
            if status != 200:
                counters["errors"] += 1
        return body

    async def loop(worker: int, sender: Any) -> None:
        n = 0
        while time.perf_counter() < stop_at:
            n += 1
            form = {
                "sessionId": f"ATUid_bench_{os.getpid()}_{worker}_{n}",
                "serviceCode": "*100#",
                "phoneNumber": PHONES[(worker + n) % len(PHONES)],
                "networkCode": "46000",
                "text": "",
            }
            menu = await post(sender, form)
            form["text"] = "1"
            result = await post(sender, form)
            if check and not (menu.startswith("CON 话费查询") and result.startswith("END ")):
                counters["errors"] += 1
            if measuring:
                counters["sessions"] += 1

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        raw = [_RawConnection(port) for _ in range(concurrency)]
        senders: list[Any] = raw if client == "raw" else [session] * concurrency
        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(loop(i, senders[i]) for i in range(concurrency)))
        measuring = True
        cpu_before = cpu_seconds(pid) if pid else float("nan")
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(*(loop(i, senders[i]) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = (cpu_seconds(pid) if pid else float("nan")) - cpu_before
        for connection in raw:
            connection.close()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(
        target="",
        requests=len(latencies),
        sessions=counters["sessions"],
        errors=counters["errors"],
        seconds=round(elapsed, 2),
        rps=round(len(latencies) / elapsed, 1),
        p50_ms=round(q[49] * 1000, 2),
        p99_ms=round(q[98] * 1000, 2),
        server_cpu_us=round(cpu / len(latencies) * 1e6, 1),
    )


def _measure(target: str, port: int, pid: int, args: argparse.Namespace) -> Result:
    import uvloop

    result = uvloop.run(
        _load(
            port,
            duration=args.duration,
            warmup=args.warmup,
            concurrency=args.concurrency,
            check=target.startswith("hotline") or target in getattr(args, "tree_names", ()),
            pid=pid,
            client=args.client,
        )
    )
    result.target = target
    return result


# ------------------------------------------------------------------------ main


def _command(
    target: str, port: int, redis_url: str, workdir: Path, trees: dict[str, Path]
) -> tuple[list[str], dict[str, str]]:
    if target.startswith("hotline") or target in trees:
        hotline = shutil.which("hotline", path=str(Path(sys.executable).parent)) or "hotline"
        env = hotline_env(redis_url, workdir, HOTLINE_PORT=str(port))
        if target == "hotline-memory":  # diagnostic: the same without Redis
            del env["HOTLINE_REDIS_URL"]
        if target in trees:  # another checkout of the code (a baseline), same venv
            tree = trees[target]
            env["PYTHONPATH"] = str(tree)
            env["HOTLINE_FLOWS_DIR"] = str(tree / "flows")
            env["HOTLINE_PROMPTS_DIR"] = str(tree / "prompts")
        return [hotline, "serve", "--port", str(port)], env
    command = [
        sys.executable, __file__, "--serve-baseline", target,
        "--port", str(port), "--redis-url", redis_url,
    ]  # fmt: skip
    return command, dict(os.environ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, default=10, help="concurrent sessions")
    parser.add_argument(
        "--targets",
        default="bare,minimal,hotline",
        help="comma-separated; also hotline-memory (in-process sessions) and minimal-link "
        "(minimal over hotline's Redis link), for diagnosis",
    )
    parser.add_argument(
        "--client",
        choices=["aiohttp", "raw"],
        default="aiohttp",
        help="load generator: aiohttp's client, or a hand-written keep-alive one (cheaper)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="targets run interleaved this many times; medians"
    )
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also serve hotline from another checkout (e.g. `git archive main`) as target "
        "NAME, interleaved with the others (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--serve-baseline", choices=["bare", "minimal", "minimal-link"], help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        _serve_baseline(args.serve_baseline, args.port, args.redis_url)
        return 0

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    trees: dict[str, Path] = {}
    for spec in args.tree:
        name, _, directory = spec.partition("=")
        if not name or not directory or not (Path(directory) / "hotline").is_dir():
            parser.error(f"--tree wants NAME=DIR with DIR/hotline in it, got {spec!r}")
        trees[name] = Path(directory).resolve()
        targets.append(name)
    args.tree_names = list(trees)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        workdir = Path(tmp)
        redis_port = free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        with process(redis_server(redis_port, workdir), dict(os.environ), redis_port, cpu=1):
            pin(1)
            for round_ in range(1, args.rounds + 1):
                for target in targets:
                    port = free_port()
                    command, env = _command(target, port, redis_url, workdir, trees)
                    with process(command, env, port, cpu=0) as pid:
                        results.append(_measure(target, port, pid, args))
                    print(f"round {round_}: {_row(results[-1])}", flush=True)
    _report(results, args)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 1 if any(r.errors for r in results) else 0


def _row(r: Result) -> str:
    return (
        f"{r.target:<14} {r.rps:>9.1f} req/s  p50 {r.p50_ms:>6.2f} ms  p99 {r.p99_ms:>6.2f} ms"
        f"  server {r.server_cpu_us:>6.1f} µs CPU/req"
        f"  ({r.requests} requests, {r.sessions} sessions, {r.errors} errors, {r.seconds}s)"
    )


def _report(all_runs: list[Result], args: argparse.Namespace) -> None:
    results = by_target(all_runs)
    by = {r.target: r for r in results}
    print(
        f"\nUSSD, 1 worker, {args.concurrency} concurrent sessions, medians of {args.rounds} "
        f"rounds of {args.duration:g}s (dial → menu → balance), {args.client} client, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"{'target':<14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11}")
    for r in results:
        print(
            f"{r.target:<14} {r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
            f" {r.server_cpu_us:>11.1f}"
        )
    for name in [t for t in by if t.startswith("hotline") or t in args.tree_names]:
        for base in ("minimal", "minimal-link", "bare"):
            if base in by:
                ratio = by[name].rps / by[base].rps
                cpu = by[name].server_cpu_us / by[base].server_cpu_us
                print(
                    f"{name} / {base:<12} req/s ratio {ratio:.2f}, server CPU per request {cpu:.2f}×"
                )
    hot = by.get("hotline")
    if hot is None:
        return
    if "minimal" in by:
        ok = hot.rps >= 0.8 * by["minimal"].rps
        print(f"target ≥ 0.80× minimal: {'met' if ok else 'NOT met'}")
    print(f"target p99 < 5 ms: {'met' if hot.p99_ms < 5 else 'NOT met'} ({hot.p99_ms:.2f} ms)")


if __name__ == "__main__":
    sys.exit(main())
