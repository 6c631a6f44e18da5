"""The TTS worker as the server sees it: async, single-flight, timed out, replaceable.

`Synthesizer` drives one `python -m ivr.synth` child over JSON lines (asyncio
subprocess pipes, so nothing blocks the event loop and synthesis never runs on it).
The child is spawned on first use, jobs run one at a time, and a job that overruns
`timeout` gets the child killed; the next job spawns a fresh one. `SpeechService`
adds the disk cache and single-flight per clip, so a warm-up and a call asking for
the same clip synthesize it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hotline.base.metrics import Metrics
from ivr.audio import AudioCache
from ivr.clips import ClipSpec

__all__ = ["SpeechService", "Synthesizer", "TtsError", "voice_for"]

log = logging.getLogger(__name__)

_DEFAULT_VOICES = {"zh": "cmn", "en": "en-us"}
_STARTUP_TIMEOUT = 30.0


def _close_transport(proc: asyncio.subprocess.Process) -> None:
    # asyncio leaves a reaped child's transport open until garbage collection, whose
    # `close()` then needs a running loop; close it while we still have one.
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()


class TtsError(RuntimeError):
    """Speech could not be produced (engine failed, timed out, or is unavailable)."""


def voice_for(language: str, voices: dict[str, str], system_espeak: bool) -> str:
    """The eSpeak voice for a language; the system's 1.51 needs `cmn-latn-pinyin`."""
    voice = voices.get(language) or _DEFAULT_VOICES.get(language.split("-")[0].lower(), "en-us")
    if system_espeak and voice == "cmn":
        # 1.51's `cmn` reads Hanzi as English-spelled pinyin ("yuan two").
        return "cmn-latn-pinyin"
    return voice


class Synthesizer:
    """One synthesis child process, replaced when it hangs or dies."""

    def __init__(self, *, timeout: float, system_espeak: bool = False) -> None:
        self.timeout = timeout
        self.system_espeak = system_espeak
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.spawned = 0
        self.jobs = 0

    async def _spawn(self) -> asyncio.subprocess.Process:
        args = [sys.executable, "-m", "ivr.synth"]
        if self.system_espeak:
            args.append("--system-espeak")
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.spawned += 1
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(_STARTUP_TIMEOUT):
                line = await proc.stdout.readline()
            hello = json.loads(line) if line else {"ok": False, "error": "exited at startup"}
        except (TimeoutError, json.JSONDecodeError) as exc:
            await self._kill(proc)
            raise TtsError(f"speech engine did not start: {exc!r}") from exc
        except BaseException:
            await asyncio.shield(self._kill(proc))
            raise
        if not hello.get("ok"):
            await self._kill(proc)
            raise TtsError(f"speech engine did not start: {hello.get('error')}")
        return proc

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()
        _close_transport(proc)

    async def render(self, spec: ClipSpec, out: Path) -> float:
        """Synthesize `spec` into `out` (atomically); returns seconds of audio."""
        job = {
            "text": spec.text,
            "voice": spec.voice,
            "rate": spec.rate,
            "format": spec.format,
            "joins": spec.joins,
            "out": str(out),
        }
        async with self._lock:
            if self._proc is None or self._proc.returncode is not None:
                self._proc = await self._spawn()
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            self.jobs += 1
            try:
                proc.stdin.write((json.dumps(job, ensure_ascii=False) + "\n").encode("utf-8"))
                await proc.stdin.drain()
                async with asyncio.timeout(self.timeout):
                    line = await proc.stdout.readline()
            except (TimeoutError, ConnectionError, BrokenPipeError) as exc:
                log.warning("tts job failed (%s); replacing the speech engine", type(exc).__name__)
                self._proc = None
                await self._kill(proc)
                raise TtsError(f"speech engine {type(exc).__name__}") from exc
            except BaseException:
                # Cancelled mid-job: the reply would be read by the next job. Start over,
                # and reap the child now (a transport left for the GC fails once the
                # loop is closed).
                self._proc = None
                await asyncio.shield(self._kill(proc))
                raise
            if not line:
                self._proc = None
                await self._kill(proc)
                raise TtsError("speech engine exited")
            reply = json.loads(line)
            if not reply.get("ok"):
                raise TtsError(str(reply.get("error")))
            return float(reply["seconds"])

    async def close(self) -> None:
        async with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await proc.wait()
        await self._kill(proc)


class SpeechService:
    """Clips on disk, rendered on demand once per content address."""

    def __init__(
        self, cache: AudioCache, synthesizer: Synthesizer, metrics: Metrics | None = None
    ) -> None:
        self.cache = cache
        self.synthesizer = synthesizer
        self.metrics = metrics  # hotline_tts_* series, when the app gives them
        self._inflight: dict[str, asyncio.Future[Path]] = {}
        self._known: set[str] = set()
        self._lookup_counters: dict[str, Any] = {}  # result → its labelled counter

    def has(self, spec: ClipSpec) -> bool:
        """Whether the clip is on disk (remembered, so a hot path costs no `stat`)."""
        return not self.missing((spec,))

    def missing(self, specs: Sequence[ClipSpec]) -> list[ClipSpec]:
        """The clips not on disk yet, in order; counts one cache lookup per clip.

        Called once per reply: counting each lookup on its own cost ~1.5 µs a clip
        (measured: 13 µs for a menu's eight clips); counting them together ~1 µs in all.
        """
        absent = [spec for spec in specs if not self._on_disk(spec)]
        if self.metrics is not None:
            if len(specs) > len(absent):
                self._lookups("hit").inc(len(specs) - len(absent))
            if absent:
                self._lookups("miss").inc(len(absent))
        return absent

    def _lookups(self, result: str) -> Any:
        """The `hotline_tts_cache_lookups` counter of one result (labelled once)."""
        child = self._lookup_counters.get(result)
        if child is None:
            assert self.metrics is not None
            child = self._lookup_counters[result] = self.metrics.tts_cache.labels(result)
        return child

    def _on_disk(self, spec: ClipSpec) -> bool:
        digest = spec.digest
        if digest in self._known:
            return True
        if self.cache.has(digest):
            self._remember(digest)
            return True
        return False

    def forget(self, spec: ClipSpec) -> None:
        self._known.discard(spec.digest)

    def _remember(self, digest: str) -> None:
        if len(self._known) > 100_000:
            self._known.clear()  # bounded: value clips are unbounded over time
        self._known.add(digest)

    async def ensure(self, spec: ClipSpec) -> Path:
        """The clip's file, synthesizing it if absent; raises `TtsError`."""
        digest = spec.digest
        path = self.cache.path(digest)
        if self._on_disk(spec):
            return path
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            await self.synthesizer.render(spec, path)
            self._remember(digest)
            future.set_result(path)
            if self.metrics is not None:
                self.metrics.tts_renders.labels("ok").inc()
        except BaseException as exc:
            if self.metrics is not None:
                self.metrics.tts_renders.labels("failed").inc()
            future.set_exception(exc if isinstance(exc, Exception) else TtsError("cancelled"))
            raise
        finally:
            del self._inflight[digest]
            if not future.done():
                future.cancel()
            # Nobody else may await this future; fetch the exception so asyncio won't warn.
            if future.done() and not future.cancelled():
                future.exception()
        return path

    async def close(self) -> None:
        await self.synthesizer.close()
