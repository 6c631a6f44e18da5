"""`hotline prompts build` with real eSpeak NG."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from hotline.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_prompts_build_renders_every_static_clip_once(
    audio_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOTLINE_IVR__AUDIO_DIR", str(audio_dir))
    monkeypatch.setenv("HOTLINE_FLOWS_DIR", str(ROOT / "flows"))
    monkeypatch.setenv("HOTLINE_PROMPTS_DIR", str(ROOT / "prompts"))
    monkeypatch.setenv("HOTLINE_PSEUDONYM_SECRET", "test-secret")
    assert main(["prompts", "build", "--quiet"]) == 0
    first = capsys.readouterr().out
    total = int(first.split(" clip(s)")[0])
    assert total > 60 and ", 0 failed" in first
    assert len(list(audio_dir.rglob("*.wav"))) >= total
    for path in list(audio_dir.rglob("*.wav"))[:5]:
        with wave.open(str(path), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    assert main(["prompts", "build", "--quiet"]) == 0
    assert f"0 rendered, {total} already there, 0 failed" in capsys.readouterr().out
    assert main(["prompts", "build", "--quiet", "--language", "en"]) == 0
    english = int(capsys.readouterr().out.split(" clip(s)")[0])
    assert 0 < english < total
    assert main(["prompts", "build", "--quiet", "--language", "xx"]) == 2
