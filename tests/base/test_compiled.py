"""Which modules run compiled, and which compiled modules are older than their source."""

from __future__ import annotations

import os
import re
import sysconfig
from pathlib import Path

from hotline.base.compiled import compiled_modules, stale_modules
from tests.conftest import ROOT

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def _tree(root: Path) -> None:
    flow = root / "hotline" / "flow"
    flow.mkdir(parents=True)
    for name in ("engine", "screen", "graph"):
        (flow / f"{name}.py").write_text("")
    (flow / f"engine{SUFFIX}").write_bytes(b"")
    (flow / f"screen{SUFFIX}").write_bytes(b"")
    (root / "hotline" / f"_compiled__mypyc{SUFFIX}").write_bytes(b"")  # no source: not a module


def test_a_module_counts_as_compiled_when_its_build_sits_beside_its_source(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert compiled_modules(tmp_path) == ["hotline.flow.engine", "hotline.flow.screen"]


def test_a_source_edited_after_its_build_is_stale(tmp_path: Path) -> None:
    _tree(tmp_path)
    flow = tmp_path / "hotline" / "flow"
    os.utime(flow / "engine.py", (1_000_000, 1_000_000))  # built after its last edit
    os.utime(flow / f"engine{SUFFIX}", (2_000_000, 2_000_000))
    os.utime(flow / f"screen{SUFFIX}", (1_000_000, 1_000_000))  # edited after its build
    os.utime(flow / "screen.py", (2_000_000, 2_000_000))
    assert stale_modules(tmp_path) == ["hotline.flow.screen"]


def test_the_install_compiled_all_of_the_request_path_or_none_of_it() -> None:
    # setup.py falls back to plain Python when mypyc refuses a module; a half-compiled
    # tree means an old build's leftovers.
    listed = re.findall(r'^    "(.+)\.py",$', (ROOT / "setup.py").read_text(), flags=re.M)
    compiled = sorted(compiled_modules(ROOT))
    assert compiled in ([], sorted(path.replace("/", ".") for path in listed))
