"""What the engine hands a channel: a channel-neutral screen (DESIGN.md §3).

A screen is prompt parts (catalog keys with typed values), numbered options, and
whether the conversation ends. Nothing here knows about USSD text budgets, `CON`/`END`,
TwiML or speech: the channel's `ChannelLayout` turns a screen into its wire form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from hotline.base.values import Value

__all__ = ["ChannelLayout", "Option", "PromptPart", "Screen", "Turn"]


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
    the page of a long screen the subscriber asked for (`98` more / `0` previous);
    channels that do not paginate ignore it. `can_go_back`/`can_go_home` say whether
    the flow's back/home keys mean something here.
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

    @property
    def label(self) -> str:
        """A static label for the step (hop metadata, metrics): the state name."""
        return self.state


class ChannelLayout(Protocol):
    """How a channel lays a screen out; the engine asks, never formats.

    `page_count` lets the engine keep the page index in range (`98` on the last page is
    an invalid choice). `session_ttl` is how long this channel's sessions live in the
    store. `render` produces the opaque reply body the engine stores so that
    a repeated request gets the identical reply.

    Both answer from the screen alone (same screen, same answer): the engine builds a
    screen without values once and hands the same object out again, and decides from
    `page_count` whether such an ending screen still waits for `98`.
    """

    channel: str
    session_ttl: int

    def page_count(self, screen: Screen) -> int: ...

    def render(self, screen: Screen) -> str: ...


@dataclass(frozen=True, slots=True)
class Turn:
    """The outcome of one engine step.

    `events` names what happened (`started`, `invalid:<state>`, `ended:<state>`,
    `action:<name>:<outcome>`, …); a repeated request's turn has exactly `("repeated",)`.
    """

    screen: Screen
    reply: str
    events: tuple[str, ...] = ()

    @property
    def repeated(self) -> bool:
        """The gateway sent the same request again and got the stored reply."""
        return self.events == ("repeated",)
