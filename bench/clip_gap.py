"""The silence a caller hears between a fixed clip and the amount after it.

Synthesizes "您的话费余额为" and "十二元五角。" with the real speech worker (eSpeak NG,
as the service runs it) and prints the silence at each clip's edges (|sample| ≤ -40 dBFS)
and the gap between the two. `--untrimmed` renders the fixed clip as a sentence end (no
trailing trim), which is what every clip sounded like before clips were joined.

    .venv/bin/python bench/clip_gap.py [--untrimmed]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

# bench/ivr.py would shadow the `ivr` package: import it from the project, not from here.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

from ivr.audio import TELEPHONY_RATE, edge_silence  # noqa: E402
from ivr.clips import ClipSpec  # noqa: E402
from ivr.tts import Synthesizer  # noqa: E402

FIXED, AMOUNT = "您的话费余额为", "十二元五角。"


def _edges(path: Path) -> tuple[float, float, float]:
    with wave.open(io.BytesIO(path.read_bytes()), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    lead, tail = edge_silence(samples, TELEPHONY_RATE)
    return lead, tail, samples.size / TELEPHONY_RATE


async def _main(untrimmed: bool) -> None:
    synth = Synthesizer(timeout=30)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            fixed, amount = Path(scratch) / "fixed.wav", Path(scratch) / "amount.wav"
            await synth.render(ClipSpec(FIXED, "cmn", 150, joins=not untrimmed), fixed)
            await synth.render(ClipSpec(AMOUNT, "cmn", 150), amount)
            a, b = _edges(fixed), _edges(amount)
    finally:
        await synth.close()
    for text, (lead, tail, length) in ((FIXED, a), (AMOUNT, b)):
        print(f"{text}: {lead * 1000:4.0f} ms before, {tail * 1000:4.0f} ms after, {length:.2f} s")
    print(f"gap between the clips: {(a[1] + b[0]) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--untrimmed", action="store_true", help="the fixed clip as before")
    asyncio.run(_main(parser.parse_args().untrimmed))


if __name__ == "__main__":
    main()
