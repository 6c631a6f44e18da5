"""Every command the README and docs/ tell a reader to run is installed by `make`.

A command in a ```sh block (or after `$ ` in a ```console block) is either the project's
own (`hotline`, `.venv/…`, `bench/…`, a dev extra), a basic tool of any Debian install, or
a `command:package` pair of the Makefile's `SYSTEM_DEPS`, which `make system-deps`
installs. A doc that starts using, say, `sox` fails here until the Makefile installs it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: On every Debian/Ubuntu machine `make` can run on (coreutils, grep, tar, git for the clone).
BASE = {".", "cd", "echo", "export", "grep", "make", "tar", "git", "cat", "ls", "sed", "env"}
#: Installed into .venv by `make setup` (the package and its dev extras).
PROJECT = {"hotline", "pip", "python", "python3", "pytest", "ruff", "mypy", "gunicorn"}


def _system_deps() -> dict[str, str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^SYSTEM_DEPS\s*:=\s*(.+)$", makefile, flags=re.M)
    assert found, "the Makefile lists SYSTEM_DEPS as command:package pairs"
    return dict(pair.split(":", 1) for pair in found.group(1).split())


def _commands(text: str) -> set[str]:
    """The command words of a markdown file's shell blocks."""
    found: set[str] = set()
    for lang, body in re.findall(r"^```(sh|bash|console)\n(.*?)^```", text, flags=re.S | re.M):
        continued = False
        for raw in body.splitlines():
            line = raw.strip()
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            elif continued or not line or line.startswith("#"):
                continued = line.endswith("\\")
                continue
            continued = line.endswith("\\")
            for part in re.split(r"\|\||&&|[|;]", line.split(" #")[0]):
                words = part.split()
                while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
                    words.pop(0)  # VAR=value before the command
                if words:
                    found.add(words[0])
    return found


def _is_project_path(command: str) -> bool:
    return command.startswith((".venv/", "bench/", "./"))


def test_the_scanner_sees_the_readme_commands() -> None:
    commands = _commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert {"make", "curl", "hotline", "."} <= commands


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_doc_commands_are_installed_by_make(doc: Path) -> None:
    deps = _system_deps()
    unknown = sorted(
        command
        for command in _commands(doc.read_text(encoding="utf-8"))
        if command not in BASE | PROJECT and command not in deps and not _is_project_path(command)
    )
    assert not unknown, (
        f"{doc.name} runs {unknown}: add `command:package` to SYSTEM_DEPS in the Makefile "
        "(or change the doc)"
    )


def test_system_deps_are_on_this_machine() -> None:
    """`make test` ran `make system-deps` first, so on Debian as root they are all here."""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("make system-deps installs only as root on Debian; elsewhere it names them")
    missing = [command for command in _system_deps() if shutil.which(command) is None]
    assert not missing, f"make system-deps did not install {missing}"
