"""Telephony WAV: eSpeak's 22 050 Hz output → 8 kHz mono (16-bit PCM or G.711 μ-law).

Edges are trimmed (`trim_silence`): eSpeak opens a clip with up to ~15 ms and closes it
with ~0.39 s of silence. The leading silence of every clip is cut to `LEAD_KEEP`; the
trailing silence only of a clip that runs straight into the next piece of its sentence
(`ClipSpec.joins`, e.g. "您的话费余额为" before the amount), to `JOIN_TAIL_KEEP` — so
"您的话费余额为 | 十二元五角" is heard as one sentence, while the pause after a sentence
stays (docs/ivr.md, "The gap before a value").

Resampling is soxr (a real anti-aliasing resampler: eSpeak puts 1–3 % of its energy
above 4 kHz, which naive interpolation would alias). The stdlib `wave` module cannot
write μ-law and `audioop` is gone in 3.13, so the μ-law encoder (a numpy port of
CPython's `st_14linear2ulaw`, verified bit-exact in the research notes) and its RIFF
header are written here.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import wave
from pathlib import Path
from typing import Literal

import numpy as np
import soxr

__all__ = [
    "TELEPHONY_RATE",
    "AudioCache",
    "AudioFormat",
    "edge_silence",
    "lin2ulaw",
    "to_telephony_wav",
    "trim_silence",
    "wav_duration",
    "write_atomic",
]

TELEPHONY_RATE = 8000
AudioFormat = Literal["pcm16", "ulaw"]
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_HEADROOM = 0.89  # ≈ -1 dB so the resampler's overshoot does not clip
#: Quieter than this is silence at a clip's edge: -40 dBFS (of a 16-bit sample).
SILENCE_THRESHOLD = 328
LEAD_KEEP = 0.010  # seconds of silence kept before the first sound of every clip
JOIN_TAIL_KEEP = 0.020  # seconds kept after the last sound of a clip that joins the next


def lin2ulaw(pcm16: np.ndarray) -> bytes:
    """G.711 μ-law of signed 16-bit samples (same bytes as `audioop.lin2ulaw(x, 2)`)."""
    v = pcm16.astype(np.int32) >> 2
    neg = v < 0
    mag = np.minimum(np.where(neg, -v, v), 8159) + (0x84 >> 2)
    seg = np.searchsorted(_SEG_UEND, mag, side="left")
    u = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0xF))
    return bytes((u ^ np.where(neg, 0x7F, 0xFF)).astype(np.uint8).tobytes())


def _ulaw_wav(data: bytes, rate: int) -> bytes:
    # WAVE_FORMAT_MULAW (7), mono, 8 bits; non-PCM formats carry cbSize and a fact chunk.
    fmt = struct.pack("<HHIIHHH", 7, 1, rate, rate, 1, 8, 0)
    fact = struct.pack("<I", len(data))
    pad = b"\x00" if len(data) % 2 else b""
    body = (
        b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"fact" + struct.pack("<I", len(fact)) + fact
        + b"data" + struct.pack("<I", len(data)) + data + pad
    )  # fmt: skip
    return b"RIFF" + struct.pack("<I", len(body)) + body


def edge_silence(
    pcm16: np.ndarray, rate: int, threshold: int = SILENCE_THRESHOLD
) -> tuple[float, float]:
    """Seconds of silence (|sample| ≤ threshold) before the first and after the last sound."""
    loud = np.flatnonzero(np.abs(pcm16.astype(np.int32)) > threshold)
    if loud.size == 0:
        return pcm16.size / rate, pcm16.size / rate
    return float(loud[0]) / rate, float(pcm16.size - 1 - loud[-1]) / rate


def trim_silence(
    pcm16: np.ndarray,
    rate: int,
    *,
    lead_keep: float = LEAD_KEEP,
    tail_keep: float | None = None,
    threshold: int = SILENCE_THRESHOLD,
) -> np.ndarray:
    """`pcm16` with edge silence cut down to `lead_keep` / `tail_keep` seconds.

    `tail_keep=None` leaves the trailing silence as it is (a sentence's natural pause).
    A clip with no sound above the threshold is returned unchanged.
    """
    loud = np.flatnonzero(np.abs(pcm16.astype(np.int32)) > threshold)
    if loud.size == 0:
        return pcm16
    start = max(int(loud[0]) - round(lead_keep * rate), 0)
    stop = pcm16.size
    if tail_keep is not None:
        stop = min(int(loud[-1]) + 1 + round(tail_keep * rate), pcm16.size)
    return pcm16[start:stop]


def to_telephony_wav(wav_bytes: bytes, fmt: AudioFormat = "pcm16", *, joins: bool = False) -> bytes:
    """Convert a mono 16-bit WAV at any rate into an 8 kHz telephony WAV.

    Leading silence is trimmed to `LEAD_KEEP`; with `joins` (the clip runs into the next
    one of its sentence) the trailing silence too, to `JOIN_TAIL_KEEP`.
    """
    with wave.open(io.BytesIO(wav_bytes), "rb") as src:
        if src.getsampwidth() != 2 or src.getnchannels() != 1:
            raise ValueError("expected mono 16-bit PCM from the synthesizer")
        rate = src.getframerate()
        samples = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2")
    if samples.size == 0:
        raise ValueError("the synthesizer produced no audio")
    floats = samples.astype(np.float32) * (_HEADROOM / 32768.0)
    out = soxr.resample(floats, rate, TELEPHONY_RATE, quality="HQ")
    pcm = np.clip(np.round(out * 32768.0), -32768, 32767).astype("<i2")
    pcm = trim_silence(pcm, TELEPHONY_RATE, tail_keep=JOIN_TAIL_KEEP if joins else None)
    if fmt == "ulaw":
        return _ulaw_wav(lin2ulaw(pcm), TELEPHONY_RATE)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(TELEPHONY_RATE)
        dst.writeframes(pcm.tobytes())
    return buffer.getvalue()


def wav_duration(data: bytes) -> float:
    """Seconds of audio in a PCM or μ-law WAV (reads the header chunks)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos, byte_rate, size = 12, 0, None
    while pos + 8 <= len(data):
        chunk, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"fmt ":
            byte_rate = struct.unpack("<I", data[pos + 16 : pos + 20])[0]
        elif chunk == b"data":
            size = length
            break
        pos += 8 + length + (length % 2)
    if not byte_rate or size is None:
        raise ValueError("WAV without fmt/data chunk")
    return float(size) / byte_rate


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory and rename: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".wav")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class AudioCache:
    """Content-addressed clips on disk: `<dir>/<aa>/<sha256>.wav`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("a clip digest is 64 lower-case hex characters")
        return self.directory / digest[:2] / f"{digest}.wav"

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()
