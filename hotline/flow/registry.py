"""Loaded flows by id and version: a reload never breaks a live session.

Sessions pin `(flow id, version)`. A reload makes the new version current for new
sessions and keeps older versions that live sessions may still reference (bounded).
The entries of the current flows are one `EntryTable` (`entries`): flows that claim one
entry twice, name an unknown state or hold a pattern that cannot match are refused as a
`FlowError` with `file:line`, at startup and at install, and nothing changes.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from hotline.flow.entries import EntryTable
from hotline.flow.load import flow_files, load_flow
from hotline.flow.model import Flow

__all__ = ["FlowRegistry"]

MAX_KEPT_VERSIONS = 32


class FlowRegistry:
    """Current flows plus recently replaced versions."""

    def __init__(self, flows: list[Flow]) -> None:
        self._current: dict[str, Flow] = {}
        self._versions: OrderedDict[tuple[str, str], Flow] = OrderedDict()
        self._entries = EntryTable()
        self.install(flows)

    @classmethod
    def from_directory(cls, directory: Path) -> FlowRegistry:
        """Load every `*.yaml` of a directory; raises `FlowError` at the first bad file or
        the first entry problem (`[entry-duplicate]`, `[entry-state]`, `[entry-pattern]`)."""
        return cls([load_flow(path) for path in flow_files(directory)])

    def install(self, flows: list[Flow]) -> None:
        """Make `flows` current (synchronous: no request ever sees half a reload).

        Callers that serve traffic check the flows first (`hotline.web.admin.reload_flows`);
        entry problems raise `FlowError` here too, before anything changes.
        """
        current = {**self._current, **{flow.id: flow for flow in flows}}
        self._entries = EntryTable.from_flows(current.values())
        for flow in flows:
            self._current[flow.id] = flow
            self._versions[(flow.id, flow.version)] = flow
            self._versions.move_to_end((flow.id, flow.version))
        while len(self._versions) > MAX_KEPT_VERSIONS:
            oldest = next(iter(self._versions))
            if self._current.get(oldest[0]) is self._versions[oldest]:
                break
            del self._versions[oldest]

    def reload(self, directory: Path) -> list[Flow]:
        """Load the directory again, unchecked; on a load error nothing changes (it propagates)."""
        flows = [load_flow(path) for path in flow_files(directory)]
        self.install(flows)
        return flows

    @property
    def entries(self) -> EntryTable:
        """Where contacts enter the current flows."""
        return self._entries

    def current(self, flow_id: str) -> Flow | None:
        return self._current.get(flow_id)

    def get(self, flow_id: str, version: str) -> Flow | None:
        return self._versions.get((flow_id, version))

    def flows(self) -> list[Flow]:
        return list(self._current.values())
