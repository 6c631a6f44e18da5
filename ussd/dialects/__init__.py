"""USSD gateway dialects: one module per wire format, each exposing a `UssdDialect`.

Adding a dialect is one module here plus its tests: `ussd/dialects/<name>.py` with
`DIALECT` (whose `NAME` is `<name>`); `dialects()` finds it, and the USSD channel mounts
`POST /ussd/<name>` and its gateway guard. Modules starting with `_` are helpers.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from ussd.dialects.base import UssdDialect

__all__ = ["UssdDialect", "dialects"]

_NOT_DIALECTS = frozenset({"base"})


@cache
def dialects() -> tuple[UssdDialect, ...]:
    """Every dialect of this package, by name; a module without a fitting `DIALECT` is a
    mistake this raises on (`TypeError`), not a dialect silently missing."""
    found: list[UssdDialect] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _NOT_DIALECTS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        dialect: UssdDialect | None = getattr(module, "DIALECT", None)
        if dialect is None or getattr(dialect, "NAME", None) != info.name:
            raise TypeError(f"{module.__name__}: expected DIALECT with NAME = {info.name!r}")
        found.append(dialect)
    return tuple(sorted(found, key=lambda d: d.NAME))
