"""WAV conversion, μ-law, the disk cache and clip keys (no speech engine needed)."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.audio import (
    AudioCache,
    edge_silence,
    lin2ulaw,
    to_telephony_wav,
    trim_silence,
    wav_duration,
    write_atomic,
)
from ivr.clips import ClipSealer, ClipSpec, InvalidClipKey


def _tone(seconds: float, rate: int = 22050, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * freq * t) * 20000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def test_pcm16_is_8khz_mono_16bit_same_length() -> None:
    data = to_telephony_wav(_tone(1.5), "pcm16")
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() == pytest.approx(12000, abs=2)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert wav_duration(data) == pytest.approx(1.5, abs=0.001)
    # The tone survives resampling (peak ≈ 20000 × headroom) and nothing clips.
    assert 16000 < int(np.abs(samples).max()) < 19000


def test_resampler_filters_what_8khz_cannot_carry() -> None:
    # A 6 kHz tone is above Nyquist at 8 kHz: a real resampler removes it, it must not alias.
    data = to_telephony_wav(_tone(1.0, freq=6000.0), "pcm16")
    with wave.open(io.BytesIO(data), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert int(np.abs(samples[200:-200]).max()) < 200


def test_ulaw_wav_header_and_duration() -> None:
    data = to_telephony_wav(_tone(2.0), "ulaw")
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    tag, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", data[20:36])
    assert (tag, channels, rate, byte_rate, align, bits) == (7, 1, 8000, 8000, 1, 8)
    assert wav_duration(data) == pytest.approx(2.0, abs=0.001)


def test_lin2ulaw_reference_points() -> None:
    pcm = np.array([0, -1, 32767, -32768, 1000, -1000], dtype=np.int16)
    assert list(lin2ulaw(pcm)) == [0xFF, 0x7E, 0x80, 0x00, 0xCE, 0x4E]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_lin2ulaw_matches_stdlib_on_every_sample() -> None:
    audioop = pytest.importorskip("audioop")  # gone in 3.13; the encoder replaces it
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert lin2ulaw(pcm) == audioop.lin2ulaw(pcm.astype("<i2").tobytes(), 2)


def test_empty_or_wrong_audio_is_refused() -> None:
    with pytest.raises(ValueError):
        to_telephony_wav(_tone(0.0))
    with pytest.raises(ValueError):
        wav_duration(b"not a wav file at all")


def test_write_atomic_and_cache_paths(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "audio")
    digest = "ab" + "0" * 62
    path = cache.path(digest)
    assert path == tmp_path / "audio" / "ab" / f"{digest}.wav"
    assert not cache.has(digest)
    write_atomic(path, b"RIFF")
    assert cache.has(digest) and path.read_bytes() == b"RIFF"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp left behind
    for bad in ("../../etc/passwd", "AB" + "0" * 62, "0" * 63):
        with pytest.raises(ValueError):
            cache.path(bad)


def test_clip_key_round_trip_is_deterministic_and_opaque() -> None:
    sealer = ClipSealer("secret-one")
    spec = ClipSpec("欠费十二元五角", "cmn", 150)
    key = sealer.seal(spec)
    assert key == sealer.seal(ClipSpec("欠费十二元五角", "cmn", 150))
    assert sealer.open(key) == spec
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert "十二".encode() not in key.encode() and "cmn" not in key
    assert key != sealer.seal(ClipSpec("欠费十二元五角", "cmn", 151))
    assert spec.digest != ClipSpec("欠费十二元五角", "cmn", 150, "ulaw").digest


@pytest.mark.parametrize("mutate", ["flip", "truncate", "other-secret", "garbage", "empty"])
def test_forged_clip_keys_are_refused(mutate: str) -> None:
    sealer = ClipSealer("secret-one")
    key = sealer.seal(ClipSpec("Goodbye.", "en-us", 150))
    if mutate == "flip":
        key = key[:10] + ("A" if key[10] != "A" else "B") + key[11:]
    elif mutate == "truncate":
        key = key[:-4]
    elif mutate == "other-secret":
        key = ClipSealer("secret-two").seal(ClipSpec("Goodbye.", "en-us", 150))
    elif mutate == "garbage":
        key = "x" * 40
    else:
        key = ""
    with pytest.raises(InvalidClipKey):
        sealer.open(key)


def _padded_tone(lead: float, tone: float, tail: float, rate: int = 22050) -> bytes:
    t = np.arange(int(tone * rate)) / rate
    sound = (np.sin(2 * np.pi * 440.0 * t) * 20000).astype("<i2")
    pcm = np.concatenate(
        [np.zeros(int(lead * rate), "<i2"), sound, np.zeros(int(tail * rate), "<i2")]
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def _samples(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def test_leading_silence_is_trimmed_and_a_sentence_keeps_its_pause() -> None:
    pcm = _samples(to_telephony_wav(_padded_tone(0.2, 0.5, 0.4)))
    lead, tail = edge_silence(pcm, 8000)
    assert lead <= 0.012 and tail == pytest.approx(0.4, abs=0.01)


def test_a_joining_clip_loses_its_trailing_silence() -> None:
    pcm = _samples(to_telephony_wav(_padded_tone(0.2, 0.5, 0.4), joins=True))
    lead, tail = edge_silence(pcm, 8000)
    assert lead <= 0.012 and tail <= 0.022
    assert pcm.size / 8000 == pytest.approx(0.5, abs=0.04)  # the sound itself is whole


def test_silence_only_is_left_alone() -> None:
    quiet = np.zeros(800, "<i2")
    assert trim_silence(quiet, 8000, tail_keep=0.0) is quiet


def test_joining_clips_have_their_own_keys() -> None:
    sealer = ClipSealer("k")
    plain, joined = (
        ClipSpec("您的话费余额为", "cmn", 150),
        ClipSpec("您的话费余额为", "cmn", 150, joins=True),
    )
    assert plain.digest != joined.digest
    assert sealer.open(sealer.seal(joined)) == joined
    assert sealer.open(sealer.seal(plain)) == plain
