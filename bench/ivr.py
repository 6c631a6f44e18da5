"""IVR load benchmark: whole voice calls against `hotline serve`, with `bench/ussd.py`'s
baselines measured in the same run.

    python bench/ivr.py [--duration 8] [--concurrency 10] [--rounds 3] [--json FILE]

1. Times `hotline prompts build` of the shipped flow in both languages into an empty
   audio directory (real eSpeak NG; target < 10 s).
2. Starts a private redis-server, then one target at a time, each its own process on
   its own port (one worker, uvloop):
   - `hotline`: `hotline serve` with Redis, the SQLite ledger, the clips built in step 1;
   - `minimal`: `bench/ussd.py --serve-baseline minimal` (form parse + Redis GET + SETEX);
   - `bare`: `bench/ussd.py --serve-baseline bare` (a constant reply);
   - `hotline-memory` (diagnostic, via `--targets`): `hotline` with in-process sessions.
3. `--concurrency` loops play whole calls, Twilio style: call start (`CallStatus=ringing`,
   no digits) → menu TwiML, then `Digits=1` on the Gather's action → balance TwiML; a new
   `CallSid` per call over the demo subscribers. Baselines get the same two form POSTs
   (their USSD shape). A warm-up phase first renders the few value clips (warm cache).

Prints req/s, p50, p99 and server CPU per request for each target, and the ratios;
target: hotline's call step ≥ 0.7× minimal's req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from _proc import cpu_seconds, free_port, hotline_env, pin, process, redis_server
from _rounds import by_target

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
USSD_BENCH = ROOT / "bench" / "ussd.py"
VOICE = "/ivr/twilio/voice"
BASELINE_PATH = "/ussd/africastalking"
PHONES = tuple(f"+86138001380{n:02d}" for n in (0, 1, 2, 4, 5))  # demo numbers, not suspended


@dataclass
class Result:
    target: str
    requests: int
    calls: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float = float("nan")
    first_error: str = ""  # the first answer counted as an error (status and text), if any


def _xml(body: str) -> ET.Element | None:
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def _menu_action(body: str) -> str | None:
    """The Gather's `action` URL if `body` is the menu TwiML, else None (a counted error)."""
    root = _xml(body)
    if root is None or [c.tag for c in root] != ["Gather", "Redirect"] or len(root[0]) < 7:
        return None
    return root[0].get("action")


def _is_balance(body: str) -> bool:
    """The balance spoken: then a hang-up, or (the flow's `after_result`, on by default)
    a short Gather offering `*` again / `0` main menu — not the seven-option menu."""
    root = _xml(body)
    if root is None:
        return False
    tags = [c.tag for c in root]
    if tags[-1:] == ["Hangup"]:
        return len(root.findall("Play")) >= 1
    return tags == ["Gather", "Redirect"] and 2 <= len(root[0].findall("Play")) < 7


async def _load(
    target: str, port: int, *, duration: float, warmup: float, concurrency: int, pid: int
) -> Result:
    import aiohttp

    voice = target.startswith("hotline")
    url = f"http://127.0.0.1:{port}{VOICE if voice else BASELINE_PATH}"
    latencies: list[float] = []
    counters = {"calls": 0, "errors": 0}
    first_error: list[str] = []  # what the first failure got, for the report
    measuring = False
    stop_at = 0.0

    async def post(session: aiohttp.ClientSession, target_url: str, form: dict[str, str]) -> str:
        started = time.perf_counter()
        async with session.post(target_url, data=form) as response:
            body = await response.text()
            ok = response.status == 200
        if measuring:
            latencies.append(time.perf_counter() - started)
            if not ok:
                counters["errors"] += 1
                if not first_error:
                    first_error.append(f"HTTP {response.status}: {body[:600]}")
        return body

    # Every call a CallSid of its own, as a voice platform gives: one sequence for the
    # warm-up and the measurement, and a tag per run (rounds run in one process). A
    # CallSid used again reached a call still open (its balance answer offers more), not
    # a new one — thousands of false errors a round.
    serial = itertools.count(1)
    run = secrets.token_hex(4)

    async def call(worker: int, session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < stop_at:
            n = next(serial)
            sid = f"CA{run}{worker:08x}{n:016x}"
            phone = PHONES[(worker + n) % len(PHONES)]
            if voice:
                form = {"CallSid": sid, "From": phone, "To": "+8610000", "CallStatus": "ringing"}
                body = await post(session, url, form)
                action = _menu_action(body)
                ok = action is not None
                if action is not None:
                    form.update({"CallStatus": "in-progress", "Digits": "1"})
                    body = await post(session, action, form)
                    ok = _is_balance(body)
                if not ok and measuring and not first_error:
                    first_error.append(f"unexpected answer: {body[:600]}")
            else:
                form = {"sessionId": sid, "serviceCode": "*100#", "phoneNumber": phone,
                        "networkCode": "46000", "text": ""}  # fmt: skip
                await post(session, url, form)
                form["text"] = "1"
                await post(session, url, form)
                ok = True
            if measuring:
                counters["calls"] += 1
                if not ok:
                    counters["errors"] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(call(i, session) for i in range(concurrency)))
        measuring = True
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(*(call(i, session) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(
        target=target,
        requests=len(latencies),
        calls=counters["calls"],
        errors=counters["errors"],
        seconds=round(elapsed, 2),
        rps=round(len(latencies) / elapsed, 1),
        p50_ms=round(q[49] * 1000, 2),
        p99_ms=round(q[98] * 1000, 2),
        server_cpu_us=round(cpu / len(latencies) * 1e6, 1),
        first_error=first_error[0] if first_error else "",
    )


def _hotline_env(redis_url: str, workdir: Path, audio: Path, port: int | None) -> dict[str, str]:
    env = hotline_env(redis_url, workdir, HOTLINE_IVR__AUDIO_DIR=str(audio))
    if port is not None:
        env["HOTLINE_PORT"] = str(port)
    return env


def _hotline_bin() -> str:
    return shutil.which("hotline", path=str(Path(sys.executable).parent)) or "hotline"


def _prompt_build(workdir: Path, audio: Path) -> tuple[float, str]:
    env = _hotline_env("", workdir, audio, None)
    env.pop("HOTLINE_REDIS_URL")
    started = time.perf_counter()
    done = subprocess.run(
        [_hotline_bin(), "prompts", "build", "--quiet"],
        env=env, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return time.perf_counter() - started, done.stdout.strip()


def _command(target: str, port: int, redis_url: str, workdir: Path, audio: Path) -> tuple[list[str], dict[str, str]]:  # fmt: skip
    if target in ("hotline", "hotline-memory"):
        env = _hotline_env(redis_url, workdir, audio, port)
        if target == "hotline-memory":
            env.pop("HOTLINE_REDIS_URL")  # diagnostic: the in-process session store
        return [_hotline_bin(), "serve", "--port", str(port)], env
    if not USSD_BENCH.exists():
        raise SystemExit(f"{USSD_BENCH} is missing: its baselines are this benchmark's reference")
    command = [
        sys.executable, str(USSD_BENCH), "--serve-baseline", target,
        "--port", str(port), "--redis-url", redis_url,
    ]  # fmt: skip
    return command, dict(os.environ)


def main(argv: list[str] | None = None) -> int:
    import uvloop

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, default=10, help="concurrent calls")
    parser.add_argument("--targets", default="bare,minimal,hotline")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="hotline-bench-ivr-") as tmp:
        workdir = Path(tmp)
        audio = workdir / "audio"
        build_seconds, build_line = _prompt_build(workdir, audio)
        print(
            f"hotline prompts build (zh-CN + en, empty cache): {build_seconds:.2f} s — {build_line}"
        )
        redis_port = free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        with process(redis_server(redis_port, workdir), dict(os.environ), redis_port, cpu=1):
            pin(1)
            for round_ in range(1, args.rounds + 1):
                for target in targets:
                    port = free_port()
                    command, env = _command(target, port, redis_url, workdir, audio)
                    with process(command, env, port, cpu=0) as pid:
                        result = uvloop.run(
                            _load(
                                target, port, duration=args.duration, warmup=args.warmup,
                                concurrency=args.concurrency, pid=pid,
                            )
                        )  # fmt: skip
                    results.append(result)
                    print(f"round {round_}: {_row(result)}", flush=True)
    summary = _report(results, args, build_seconds)
    if args.json:
        args.json.write_text(
            json.dumps({"runs": [asdict(r) for r in results], **summary}, indent=2) + "\n"
        )
    return 1 if any(r.errors for r in results) else 0


def _row(r: Result) -> str:
    return (
        f"{r.target:<15} {r.rps:>9.1f} req/s  p50 {r.p50_ms:>6.2f} ms  p99 {r.p99_ms:>6.2f} ms"
        f"  server {r.server_cpu_us:>6.1f} µs CPU/req"
        f"  ({r.requests} requests, {r.calls} calls, {r.errors} errors, {r.seconds}s)"
        + (f"\n    first error: {r.first_error}" if r.first_error else "")
    )


def _report(all_runs: list[Result], args: argparse.Namespace, build: float) -> dict[str, object]:
    results = by_target(all_runs)
    by = {r.target: r for r in results}
    print(
        f"\nIVR, 1 worker, {args.concurrency} concurrent calls, medians of {args.rounds} rounds "
        f"of {args.duration:g}s (call start → menu → balance, warm clip cache), "
        f"Python {sys.version.split()[0]}"
    )
    print(f"{'target':<15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11}")
    for r in results:
        print(
            f"{r.target:<15} {r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
            f" {r.server_cpu_us:>11.1f}"
        )
    summary: dict[str, object] = {"prompt_build_seconds": round(build, 2)}
    hot = by.get("hotline")
    if hot is not None:
        for base in ("minimal", "bare"):
            if base in by:
                ratio = hot.rps / by[base].rps
                summary[f"ratio_{base}"] = round(ratio, 2)
                print(f"hotline IVR / {base:<8} req/s ratio {ratio:.2f}")
        if "minimal" in by:
            ok = hot.rps >= 0.7 * by["minimal"].rps
            print(f"target ≥ 0.70× minimal: {'met' if ok else 'NOT met'}")
    print(f"target prompt build < 10 s: {'met' if build < 10 else 'NOT met'} ({build:.2f} s)")
    return summary


if __name__ == "__main__":
    sys.exit(main())
