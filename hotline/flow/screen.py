"""What the engine hands a channel: a channel-neutral screen (DESIGN.md §3).

A screen is prompt parts (catalog keys with typed values), numbered options, and
whether the conversation ends. Nothing here knows about USSD text budgets, `CON`/`END`,
TwiML or speech: the channel's renderer turns a screen into its wire form, after the
step, and reports how many pages it made of it (`Engine.commit`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hotline.base.values import Value

if TYPE_CHECKING:
    from hotline.flow.engine import PendingSave

__all__ = ["Option", "PromptPart", "Screen", "Turn"]


@dataclass(frozen=True, slots=True)
class PromptPart:
    """One catalog sentence: its key and the typed values for its placeholders."""

    key: str
    values: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Option:
    """A numbered choice: the key the subscriber presses and its label."""

    key: str
    label: PromptPart


@dataclass(frozen=True, slots=True)
class Screen:
    """A state that needs the subscriber (or the final word).

    `notice` is a short line shown before the prompt, e.g. "invalid choice". `page` is
    the page of a long screen the subscriber asked for (the flow's `more`/`back` keys);
    channels that do not paginate ignore it, channels that do lay the screen out and
    clamp it. `can_go_back`/`can_go_home` say whether the flow's back/home keys mean
    something here. An ending screen (`ends`) may still have pages to show: the channel
    keeps the conversation open until its last page (it reports its page count to
    `Engine.commit`). `transfer` is a number the call is handed to after the screen is
    spoken (a flow's `call.transfer`); channels that cannot transfer ignore it.
    `after_result` marks an ending screen of a flow's end state after which the
    subscriber may still act — hear it again (`repeat`), page back, go to the main menu
    (the flow's `back` key) — if the channel keeps the session open: voice offers it
    (and, after a silence, the screen comes without its parts: the result is not said
    again, only the offer); USSD does for the last page of a many-page screen. It is
    False for closings (`_goodbye`, errors), transfers and flows that turn it off.
    `max_input` is set on a free-input screen (an `input` state): the longest input it
    accepts, so a channel can finish the input by itself (voice: `numDigits`, with `#`
    to finish earlier).
    """

    state: str
    language: str
    parts: tuple[PromptPart, ...]
    options: tuple[Option, ...] = ()
    ends: bool = False
    notice: PromptPart | None = None
    page: int = 0
    can_go_back: bool = False
    can_go_home: bool = False
    expects_input: bool = False
    transfer: str | None = None
    max_input: int | None = None
    after_result: bool = False

    @property
    def label(self) -> str:
        """A static label for the step (hop metadata, metrics): the state name."""
        return self.state


@dataclass(frozen=True, slots=True)
class Turn:
    """The outcome of one engine step: the screen to render and what happened.

    `events` names what happened (`started`, `invalid:<state>`, `ended:<state>`,
    `action:<name>:<outcome>`, …); a repeated request's turn has exactly `("repeated",)`
    and a refused one (`refused`: another's session, or a hang-up for a session there is
    none of) changed nothing. `pending` is the session write that
    `Engine.commit` performs once the channel has laid the screen out (None: nothing to
    save).
    """

    screen: Screen
    events: tuple[str, ...] = ()
    pending: PendingSave | None = field(default=None, repr=False, compare=False)

    @property
    def repeated(self) -> bool:
        """The gateway sent the same request again and got the same screen."""
        return self.events == ("repeated",)
