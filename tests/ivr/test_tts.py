"""The speech worker with real eSpeak NG 1.52 (few syntheses: each costs ~10 ms + spawn)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.audio import AudioCache, edge_silence, wav_duration
from ivr.clips import ClipSpec
from ivr.tts import SpeechService, Synthesizer, TtsError, voice_for


def _check_wav(path: Path, low: float, high: float) -> float:
    data = path.read_bytes()
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    seconds = wav_duration(data)
    assert low < seconds < high, seconds
    return seconds


async def test_mandarin_and_english_clips(tmp_path: Path) -> None:
    synth = Synthesizer(timeout=10)
    try:
        zh = await synth.render(
            ClipSpec("您的话费余额为十二元五角。", "cmn", 150), tmp_path / "zh.wav"
        )
        en = await synth.render(ClipSpec("Goodbye.", "en-us", 150), tmp_path / "en.wav")
    finally:
        await synth.close()
    assert zh == _check_wav(tmp_path / "zh.wav", 2.0, 6.0)
    assert en == _check_wav(tmp_path / "en.wav", 0.3, 1.5)
    assert synth.spawned == 1 and synth.jobs == 2


_OVERWRITE_PROBE = """
import sys, pathlib
from ivr.synth import load_engine, synthesize
engine = load_engine(system_espeak=False)
out, scratch = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
synthesize(engine, {"text": "One.", "voice": "en-us", "rate": 150, "out": str(out)}, scratch)
driver = engine.proxy._driver
# pyttsx3 2.99 keeps both after a save: a later run would re-synthesize into that file.
print("RESULT", driver._save_file, driver._text_to_say)
"""


def test_engine_state_is_reset_after_each_clip(tmp_path: Path) -> None:
    # Runs the engine in its own interpreter, as the service does (never in pytest's).
    (tmp_path / "scratch").mkdir()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _OVERWRITE_PROBE,
            str(tmp_path / "one.wav"),
            str(tmp_path / "scratch"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # The driver prints one "Audio saved to" per synthesis: exactly one may have run.
    assert out.stdout.count("Audio saved to") == 1, out.stdout
    assert "RESULT None None" in out.stdout
    _check_wav(tmp_path / "one.wav", 0.2, 1.5)


async def test_stuck_synthesis_times_out_and_the_worker_is_replaced(tmp_path: Path) -> None:
    synth = Synthesizer(timeout=10)
    try:
        await synth.render(ClipSpec("Warm.", "en-us", 150), tmp_path / "warm.wav")
        synth.timeout = 0.0005  # nothing can finish in half a millisecond
        long_text = "This sentence is long enough to keep the engine busy for a moment. " * 8
        with pytest.raises(TtsError):
            await synth.render(ClipSpec(long_text, "en-us", 150), tmp_path / "stuck.wav")
        synth.timeout = 10
        await synth.render(ClipSpec("Back again.", "en-us", 150), tmp_path / "after.wav")
    finally:
        await synth.close()
    assert synth.spawned == 2
    _check_wav(tmp_path / "after.wav", 0.3, 2.0)


async def test_service_caches_and_single_flights(tmp_path: Path) -> None:
    synth = Synthesizer(timeout=10)
    service = SpeechService(AudioCache(tmp_path / "audio"), synth)
    spec = ClipSpec("Your main balance is", "en-us", 150)
    try:
        paths = await asyncio.gather(*(service.ensure(spec) for _ in range(5)))
        again = await service.ensure(spec)
    finally:
        await service.close()
    assert len(set(paths)) == 1 and again == paths[0]
    assert paths[0] == tmp_path / "audio" / spec.digest[:2] / f"{spec.digest}.wav"
    assert synth.jobs == 1
    _check_wav(paths[0], 0.5, 3.0)


async def test_engine_error_is_reported_and_worker_survives(tmp_path: Path) -> None:
    synth = Synthesizer(timeout=10)
    try:
        with pytest.raises(TtsError):
            # An unwritable destination fails inside the child; it must keep serving.
            await synth.render(ClipSpec("Hello.", "en-us", 150), Path("/proc/no/such/dir.wav"))
        await synth.render(ClipSpec("Hello.", "en-us", 150), tmp_path / "ok.wav")
    finally:
        await synth.close()
    assert synth.spawned == 1


def test_voice_choice() -> None:
    assert voice_for("zh-CN", {}, system_espeak=False) == "cmn"
    assert voice_for("zh-CN", {}, system_espeak=True) == "cmn-latn-pinyin"
    assert voice_for("en", {}, system_espeak=False) == "en-us"
    assert voice_for("en", {"en": "en-gb"}, system_espeak=False) == "en-gb"


async def test_a_voice_espeak_does_not_take_is_an_error_not_a_wrong_clip(tmp_path: Path) -> None:
    # pyttsx3 swallows eSpeak's refusal; the worker checks what eSpeak really uses.
    synth = Synthesizer(timeout=10)
    try:
        with pytest.raises(TtsError, match="no-such-voice"):
            await synth.render(ClipSpec("Hello.", "no-such-voice", 150), tmp_path / "x.wav")
        assert not (tmp_path / "x.wav").exists()
        await synth.render(ClipSpec("Hello.", "en-us", 150), tmp_path / "ok.wav")
    finally:
        await synth.close()


async def test_fresh_engines_all_speak_at_the_asked_rate(tmp_path: Path) -> None:
    # A fresh engine once applied pyttsx3's initial rate (200) after ours: clips 30 % short.
    async def first_clip(n: int) -> float:
        synth = Synthesizer(timeout=60)  # six engines at once: slow on a busy machine
        try:
            return await synth.render(ClipSpec("十二元五角。", "cmn", 150), tmp_path / f"{n}.wav")
        finally:
            await synth.close()

    lengths = await asyncio.gather(*(first_clip(n) for n in range(6)))
    assert max(lengths) - min(lengths) < 0.02, lengths
    assert 1.7 < lengths[0] < 2.3


def _edges(path: Path) -> tuple[float, float]:
    with wave.open(str(path), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return edge_silence(samples, 8000)


async def test_no_audible_gap_between_fixed_text_and_the_amount(tmp_path: Path) -> None:
    """Measured on real eSpeak NG output: the fixed clip before a value ends within a few
    ms of its last sound, the value starts within a few ms of its first; a sentence's
    last clip keeps its pause. Before trimming: 391 ms + 14 ms of silence between
    "您的话费余额为" and "十二元五角。" (docs/ivr.md)."""
    synth = Synthesizer(timeout=10)
    try:
        await synth.render(ClipSpec("您的话费余额为", "cmn", 150, joins=True), tmp_path / "a.wav")
        await synth.render(ClipSpec("十二元五角。", "cmn", 150), tmp_path / "b.wav")
    finally:
        await synth.close()
    lead_a, tail_a = _edges(tmp_path / "a.wav")
    lead_b, tail_b = _edges(tmp_path / "b.wav")
    assert tail_a <= 0.025 and lead_a <= 0.015, (lead_a, tail_a)
    assert lead_b <= 0.015, lead_b
    assert tail_a + lead_b <= 0.04  # the gap a caller hears between the two clips
    assert 0.2 < tail_b < 0.6, tail_b  # the sentence's own pause is kept
    _check_wav(tmp_path / "a.wav", 1.2, 3.0)  # the words themselves are all there
