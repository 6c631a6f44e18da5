"""Quiet hours and the daily cap: when a reminder may go out (local time).

China's SMS rules are often quoted with a 21:00–08:00 quiet window; it is
configuration here (`reminders.quiet_start` / `quiet_end`). A reminder decided inside
the window is deferred to its end, never dropped; one over the per-subscriber daily cap
is deferred to the next local day's end of the window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = ["QuietHours", "parse_hhmm"]


def parse_hhmm(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


@dataclass(frozen=True, slots=True)
class QuietHours:
    """The window `[start, end)` in `zone`; start == end means no quiet hours."""

    start: dt.time
    end: dt.time
    zone: ZoneInfo

    def _local(self, at: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(at, self.zone)

    def is_quiet(self, at: float) -> bool:
        if self.start == self.end:
            return False
        now = self._local(at).time()
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end  # spans midnight

    def next_open(self, at: float) -> float:
        """The first moment at or after `at` outside the window."""
        if not self.is_quiet(at):
            return at
        local = self._local(at)
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, self.end, self.zone).timestamp()

    def day_of(self, at: float) -> str:
        """The local calendar day of `at` (`2026-12-06`), what the daily cap counts by."""
        return self._local(at).date().isoformat()

    def next_day_open(self, at: float) -> float:
        """The end of the quiet window on the next local day (where a capped one waits)."""
        tomorrow = self._local(at).date() + dt.timedelta(days=1)
        opening = self.end if self.start != self.end else dt.time(0, 0)
        return dt.datetime.combine(tomorrow, opening, self.zone).timestamp()
