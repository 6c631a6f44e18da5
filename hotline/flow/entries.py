"""TEMPORARY shim until the entries slice lands."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hotline.flow.model import Flow

__all__ = ["EntryMatch", "EntryTable"]


@dataclass(frozen=True, slots=True)
class EntryMatch:
    flow: str
    state: str
    inputs: tuple[str, ...]


class EntryTable:
    @classmethod
    def from_flows(cls, flows: Iterable[Flow]) -> EntryTable:
        return cls()

    def resolve(self, channel: str, entry: str, inputs: tuple[str, ...] = ()) -> EntryMatch | None:
        return None

    def rows(self) -> list[tuple[str, str, str, str]]:
        return []
