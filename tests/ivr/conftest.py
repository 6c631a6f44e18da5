"""Fixtures of the voice tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clip cache for the whole run: each clip is synthesized once."""
    return tmp_path_factory.mktemp("audio")
