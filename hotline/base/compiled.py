"""Which of hotline's modules run compiled (setup.py builds them with mypyc), and which
compiled modules are older than their source: Python imports a compiled module before
its `.py`, so an edit not followed by `make setup` would not run."""

from __future__ import annotations

import sysconfig
from pathlib import Path

PACKAGES = ("hotline", "ussd", "ivr", "sms", "api")

#: Where the packages are: the checkout (an editable install) or site-packages.
INSTALLED_ROOT = Path(__file__).resolve().parents[2]


def _suffix() -> str:
    return str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def compiled_modules(root: Path) -> list[str]:
    """The modules under `root` with a compiled form next to their source."""
    suffix = _suffix()
    found = []
    for package in PACKAGES:
        for built in sorted((root / package).rglob(f"*{suffix}")):
            source = built.with_name(built.name.removesuffix(suffix) + ".py")
            if source.exists():
                found.append(str(source.relative_to(root).with_suffix("")).replace("/", "."))
    return found


def stale_modules(root: Path) -> list[str]:
    """The compiled modules under `root` whose source changed after they were built."""
    suffix = _suffix()
    stale = []
    for module in compiled_modules(root):
        source = root / (module.replace(".", "/") + ".py")
        built = source.with_name(source.stem + suffix)
        if source.stat().st_mtime > built.stat().st_mtime:
            stale.append(module)
    return stale
