"""Channel events: what a dialect turns a gateway request into (DESIGN.md §3).

A dialect parses the wire request into exactly one `ChannelEvent`; invalid requests
never become events (the dialect raises `BadGatewayRequest` instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ChannelEvent", "EventKind"]

EventKind = Literal["start", "transcript", "input", "timeout", "repeat", "hangup"]


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """One request from a subscriber's session.

    - `transcript`: the gateway sends every input so far joined by `*` (Africa's Talking
      USSD); the engine diffs it against the stored transcript.
    - `input`: one new input (voice keypresses).
    - `start`: a new call or dial with nothing typed yet.
    - `timeout`: the subscriber said nothing (IVR no-input).
    - `repeat`: the subscriber asked to hear the current screen again.
    - `hangup`: the session ended on the subscriber's side.
    """

    channel: str
    dialect: str
    session_id: str
    subscriber: str
    kind: EventKind
    text: str = ""
    service_code: str = ""

    def __post_init__(self) -> None:
        if not self.session_id:
            raise ValueError("ChannelEvent.session_id must not be empty")
        if not self.subscriber:
            raise ValueError("ChannelEvent.subscriber must not be empty")
