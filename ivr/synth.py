"""The synthesis process: owns the one pyttsx3 engine (run as `python -m ivr.synth`).

pyttsx3 2.99's eSpeak driver is neither thread- nor fork-safe and keeps state between
jobs (docs/ivr.md, research §6), so the engine lives alone in this process, started
by spawning a fresh interpreter (never fork after init) and fed one job at a time:

- one `save_to_file` per `runAndWait` (two queued saves write only the last file);
- after each job the driver's `_save_file` / `_text_to_say` are cleared, otherwise a
  later empty `runAndWait()` re-synthesizes and overwrites the previous file;
- the driver `print()`s "Audio saved to …": stdout is the job protocol, so Python's
  stdout is pointed at stderr and replies go to the saved real stdout.

Protocol: one JSON object per line. Request `{"text", "voice", "rate", "format", "joins",
"out"}` (`joins`: trim the trailing silence, see `ivr.audio`);
reply `{"ok": true, "seconds": s}` or `{"ok": false, "error": "..."}`. The parent owns
the timeout and kills this process when a job hangs.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import tempfile
import wave
from pathlib import Path
from typing import Any, TextIO

from ivr.audio import to_telephony_wav, wav_duration, write_atomic

__all__ = ["load_engine", "main", "synthesize"]

_ATTEMPTS = 3


def load_engine(system_espeak: bool) -> Any:
    """Create the pyttsx3 engine on eSpeak NG 1.52 from `espeakng-loader` (or the system's)."""
    if not system_espeak:
        import espeakng_loader

        # Must precede `import pyttsx3`: its driver loads `libespeak-ng.so.1` by soname at
        # import time and would otherwise find the system 1.51 (wrong Mandarin) or nothing.
        os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
        ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
    import pyttsx3

    engine = pyttsx3.init()
    _append_samples_first(engine)
    return engine


def _append_samples_first(engine: Any) -> None:
    """Keep the last chunk of every clip.

    pyttsx3 2.99's callback handles the end-of-message event — writing the WAV — before
    it appends the samples that came in the same callback, so when eSpeak delivers the
    last chunk together with that event (seen on fresh engines under CPU load: a clip
    cut from 1.99 s to 1.37 s), the chunk never reaches the file. Append first, then let
    the driver do its bookkeeping with no samples.
    """
    from pyttsx3.drivers import _espeak

    driver = engine.proxy._driver
    original = driver._onSynth

    def on_synth(wav: Any, numsamples: int, events: Any) -> int:
        if numsamples > 0 and driver._speaking:
            size = numsamples * ctypes.sizeof(ctypes.c_short)
            driver._data_buffer += ctypes.string_at(wav, size)
        result: int = original(wav, 0, events)
        return result

    # `SetSynthCallback` keeps the ctypes wrapper alive in `_espeak.SynthCallback`.
    _espeak.SetSynthCallback(on_synth)


def _applied(engine: Any, voice: str, rate: int) -> bool:
    """Whether eSpeak really uses this voice and rate (pyttsx3 swallows its errors)."""
    from pyttsx3.drivers import _espeak

    current = str(engine.proxy._driver.getProperty("voice") or "")
    wanted = voice.lower().rsplit("/", 1)[-1]
    return _espeak.GetParameter(_espeak.RATE) == rate and current.rsplit("/", 1)[-1] == wanted


def _synthesize_once(engine: Any, job: dict[str, Any], raw: Path) -> bool:
    from pyttsx3.drivers import _espeak

    # eSpeak synthesizes on its own thread (RETRIEVAL mode). If a run ever returned
    # before eSpeak finished, its late callbacks would land in this job's file: wait
    # for the queue to drain before and after every job.
    _espeak.Synchronize()
    raw.unlink(missing_ok=True)
    voice, rate = str(job["voice"]), int(job["rate"])
    # Set the properties directly (not through pyttsx3's command queue) and check them:
    # on a fresh engine the driver's own initial `rate 200` was seen landing after ours
    # (about 1 process in 60 under load: every clip of that process 30 % too fast).
    driver = engine.proxy._driver
    driver.setProperty("voice", voice)
    driver.setProperty("rate", rate)
    if not _applied(engine, voice, rate):
        return False
    engine.save_to_file(str(job["text"]), str(raw))
    try:
        engine.runAndWait()
    finally:
        driver._save_file = None
        driver._text_to_say = None
        _espeak.Synchronize()
    if not raw.is_file() or not _applied(engine, voice, rate):
        return False
    try:
        with wave.open(str(raw), "rb") as check:
            return check.getnframes() > 0
    except (EOFError, wave.Error):
        return False


def synthesize(engine: Any, job: dict[str, Any], scratch: Path) -> float:
    """Render one job into its final file; returns the audio length in seconds.

    A result that is empty, or made while eSpeak did not have the job's voice and rate,
    is retried before it counts as a failure.
    """
    raw = scratch / "job.wav"
    for _ in range(_ATTEMPTS):
        if _synthesize_once(engine, job, raw):
            break
    else:
        raise RuntimeError("no clean audio (empty file, or voice/rate not applied)")
    data = to_telephony_wav(
        raw.read_bytes(), job.get("format", "pcm16"), joins=bool(job.get("joins", False))
    )
    write_atomic(Path(job["out"]), data)
    return wav_duration(data)


def _serve(engine: Any, jobs: TextIO, replies: TextIO) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-tts-") as scratch:
        for line in jobs:
            try:
                seconds = synthesize(engine, json.loads(line), Path(scratch))
                reply: dict[str, Any] = {"ok": True, "seconds": seconds}
            except Exception as exc:  # a bad job must not kill the worker
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            replies.write(json.dumps(reply) + "\n")
            replies.flush()


def main() -> int:
    replies = sys.stdout
    sys.stdout = sys.stderr
    try:
        engine = load_engine("--system-espeak" in sys.argv[1:])
    except Exception as exc:
        replies.write(json.dumps({"ok": False, "error": f"engine: {exc}"}) + "\n")
        replies.flush()
        return 1
    replies.write(json.dumps({"ok": True, "ready": True}) + "\n")
    replies.flush()
    _serve(engine, sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
