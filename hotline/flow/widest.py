"""The widest screens a channel can get from a flow, for `flows check` to measure whole.

A channel that cannot page a screen (SMS: one message of at most `sms.max_parts` parts)
must know before a contact does that none of its screens can outgrow it. Its
`WholeScreenCheck` (`hotline.flow.check`) is handed, for every state that shows a screen
and can be reached from the channel's entries, the screen at its widest: every prompt
part shown (whatever its `when`), every option (whatever its `when`), the invalid-choice
notice before a menu or an input, and each placeholder filled with the widest value of
its type (`WIDEST`) — 99 999.99 owed, 999 GB, a date with two-digit month and day, a
masked number. `Text` placeholders are left empty: their values (labels, language
names) are catalog text the check cannot guess.

Channel-neutral: the channel lays the screen out by its own rules and says whether it
fits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping

from hotline.base.values import (
    Clock,
    Count,
    Date,
    Digits,
    Duration,
    Money,
    Msisdn,
    Text,
    Value,
    Volume,
)
from hotline.flow.engine import KEY_INVALID
from hotline.flow.model import EndState, Flow, InputState, MenuState, State
from hotline.flow.screen import Option, PromptPart, Screen
from hotline.i18n.catalog import Catalog

__all__ = ["NOTICE_KEY", "WIDEST", "reachable", "widest_screen", "widest_screens"]

#: The engine's invalid-choice notice (`nav.invalid`), shown above a menu or an input.
NOTICE_KEY = KEY_INVALID

#: The widest value of each placeholder type a check assumes.
WIDEST: Mapping[str, Value] = {
    "money": Money(-99_999_99),
    "volume": Volume(999 * 1024**3),
    "duration": Duration(99_999 * 60),
    "int": Count(99_999),
    "date": Date(dt.date(2099, 12, 28)),
    "time": Clock(dt.datetime(2099, 12, 28, 23, 59)),
    "text": Text(""),
    "digits": Digits("9" * 20),
    "msisdn": Msisdn("+861380013800099"),
}


def reachable(flow: Flow, channel: str) -> list[str]:
    """The states a contact entering by `channel` can reach (by the states' own
    targets), in the order found; empty when the flow has no entry for the channel."""
    seen: dict[str, None] = {}
    todo = [e.state for e in flow.entry_points() if e.channel == channel]
    while todo:
        name = todo.pop(0)
        if name in seen or name not in flow.states:
            continue
        seen[name] = None
        todo.extend(flow.states[name].targets().values())
    return list(seen)


def _part(key: str, catalog: Catalog) -> PromptPart:
    sentence = catalog.sentences.get(key)
    if sentence is None:
        return PromptPart(key)
    values = {name: WIDEST.get(kind, Text("")) for name, kind in sentence.placeholders.items()}
    return PromptPart(key, values)


def widest_screen(name: str, state: State, catalog: Catalog) -> Screen | None:
    """The widest screen of one state in the catalog's language (None: it shows none)."""
    if not isinstance(state, MenuState | InputState | EndState):
        return None
    options: tuple[Option, ...] = ()
    if isinstance(state, MenuState):
        options = tuple(Option(o.key, _part(o.label, catalog)) for o in state.options)
    waits = not isinstance(state, EndState)
    return Screen(
        state=name,
        language=catalog.language,
        parts=tuple(_part(p.key, catalog) for p in state.prompt),
        options=options,
        ends=not waits,
        notice=_part(NOTICE_KEY, catalog) if waits and NOTICE_KEY in catalog else None,
        expects_input=isinstance(state, InputState),
    )


def widest_screens(flow: Flow, channel: str, catalog: Catalog) -> Iterator[Screen]:
    """The widest screen of every state `channel`'s entries can reach."""
    for name in reachable(flow, channel):
        screen = widest_screen(name, flow.states[name], catalog)
        if screen is not None:
            yield screen
