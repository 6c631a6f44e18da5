"""Results over interleaved rounds, shared by the load scripts (a shared machine is noisy)."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["by_target"]

R = TypeVar("R")


def _combined(runs: Sequence[Any]) -> Any:
    """One result from several rounds of one target: counts and seconds summed, every other
    figure (req/s, latencies, CPU per request) the median."""
    first = runs[0]
    values: dict[str, Any] = {}
    for field in dataclasses.fields(first):
        column = [getattr(run, field.name) for run in runs]
        if isinstance(column[0], str):
            continue
        if isinstance(column[0], int) or field.name == "seconds":
            values[field.name] = round(sum(column), 2)
        else:
            values[field.name] = round(statistics.median(column), 2)
    return dataclasses.replace(first, **values)


def by_target(runs: Sequence[R]) -> list[R]:
    """Each target's rounds combined, targets in the order they first ran."""
    targets = list(dict.fromkeys(getattr(run, "target") for run in runs))  # noqa: B009
    return [_combined([r for r in runs if getattr(r, "target") == t]) for t in targets]  # noqa: B009
