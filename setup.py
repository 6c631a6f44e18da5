"""Build hook: compile the USSD request path with mypyc when this machine can.

Everything else about the package is declared in pyproject.toml. The modules below are
the ones a USSD step runs through (issue 20's profile: a flat spread of pure-Python work
with no single hot spot), so compiling them is the one lever that cuts them all. The
source stays the same Python: with `HOTLINE_COMPILE=0`, or with no C compiler or Python
headers here, or when mypyc refuses a module, the package installs as plain Python and
behaves the same, only slower. The build requirements in pyproject.toml give the compiled
modules their third-party types. `hotline.base.compiled` (which this script cannot import:
it runs before the package is installed) finds what was built, for `hotline serve` and
the tests.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

# One shared library for the group, inside the package (not at the top level of
# site-packages), so an editable install finds it too.
GROUP = "hotline._compiled"
SUFFIX = str(sysconfig.get_config_var("EXT_SUFFIX"))

PACKAGES = ("hotline", "ussd", "ivr", "sms", "api")

# What mypyc cannot take (found the hard way): a package's `__init__.py` (its submodules
# no longer import), async generators, a subclass of a Python class or of most built-in
# types (ConnectionError), a generic class. Compiled functions have no docstrings, so a
# module whose docstrings are read at run time (flow actions' docs) stays Python; and an
# instance of a compiled class must never reach orjson's dataclass support.
REQUEST_PATH = [
    "hotline/base/logs.py",
    "hotline/base/privacy.py",
    "hotline/base/values.py",
    "hotline/flow/actions/base.py",
    "hotline/flow/engine.py",
    "hotline/flow/entries.py",
    "hotline/flow/events.py",
    "hotline/flow/registry.py",
    "hotline/flow/resume.py",
    "hotline/flow/screen.py",
    "hotline/i18n/gsm7.py",
    "hotline/i18n/speech.py",
    "hotline/i18n/text.py",
    "hotline/store/redislink.py",
    "hotline/store/sessions.py",
    "hotline/web/forms.py",
    "hotline/web/guards.py",
    "hotline/web/observe.py",
    "hotline/web/ratelimit.py",
    "hotline/web/turns.py",
    "ivr/dialects/twilio.py",
    "ivr/render.py",
    "ivr/voicexml.py",
    "ussd/budget.py",
    "ussd/dialects/africastalking.py",
    "ussd/form.py",
    "ussd/render.py",
    "ussd/routes.py",
]


def _can_compile() -> str:
    """Why this build stays pure Python, or "" when it can compile."""
    if os.environ.get("HOTLINE_COMPILE", "1") == "0":
        return "HOTLINE_COMPILE=0"
    if sys.implementation.name != "cpython":
        return f"mypyc needs CPython, not {sys.implementation.name}"
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        return "no Python headers (Debian: python3-dev)"
    if not shutil.which((os.environ.get("CC") or "cc").split()[0]):
        return "no C compiler (Debian: gcc)"
    return ""


def _remove_stale(keep: list[str]) -> None:
    """Delete compiled modules this build does not make: they would shadow their source."""
    here = Path(__file__).parent
    wanted = {str(Path(path).with_suffix("")) for path in keep}
    for package in PACKAGES:
        for built in (here / package).rglob(f"*{SUFFIX}"):
            module = str(built.relative_to(here)).removesuffix(SUFFIX)
            if module not in wanted and module != GROUP.replace(".", "/") + "__mypyc":
                built.unlink()


def _ext_modules() -> list[object]:
    reason = _can_compile()
    _remove_stale([] if reason else REQUEST_PATH)
    if reason:
        print(f"hotline: installing as pure Python ({reason})", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    options = [
        # The project's own mypy settings load the pydantic plugin, which the isolated
        # build environment does not have; `make lint` checks the code strictly.
        "--config-file",
        os.devnull,
        "--ignore-missing-imports",
        "--follow-imports=silent",
        "--python-version",
        f"{sys.version_info.major}.{sys.version_info.minor}",
        *REQUEST_PATH,
    ]
    try:
        return list(mypycify(options, group_name=GROUP, opt_level="3", debug_level="0"))
    except SystemExit:  # mypyc found a type error: it has printed it
        print("hotline: installing as pure Python (mypyc could not compile)", file=sys.stderr)
        _remove_stale([])
        return []


setup(ext_modules=_ext_modules())
