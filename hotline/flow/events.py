"""Channel events: what a dialect turns a gateway request into (DESIGN.md §3).

A dialect parses the wire request into exactly one `ChannelEvent`; invalid requests
never become events (the dialect raises `BadGatewayRequest` instead). Wire conventions
— a `*`-joined transcript, a call's `Digits`, an SMS body — are the dialect's to
decode: the engine sees plain inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ChannelEvent", "EventKind"]

EventKind = Literal["start", "input", "timeout", "repeat", "hangup"]


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """One request from a subscriber's session.

    Kinds:
    - `start`: a dial or a call, possibly with inputs typed along with it (`inputs`:
      `*100*1*1#` arrives as entry `*100#` with inputs `("1", "1")`);
    - `input`: one new input (`text`), e.g. a menu choice or keys pressed;
    - `timeout`: the subscriber said nothing (voice no-input);
    - `repeat`: the subscriber asked to hear the current screen again;
    - `hangup`: the session ended on the subscriber's side.

    `entry` is what the contact was addressed to — the USSD service code, the called
    number, the SMS keyword — on every request of the session: the engine routes a new
    session by it (DESIGN.md §12) and binds the session to it. `inputs` is everything
    typed so far when the gateway resends it (a session that does not exist yet is
    started and these are replayed).

    Replay safety: `request_id` names this request (None: the gateway gives no such
    identity); a request whose id equals the last one the session applied is a repeat
    and gets the same screen with no new side effects. `follows` is the id of the
    request this one continues, when the gateway says (None: unknown); a request that
    follows another than the session's last is refused politely.
    """

    channel: str
    dialect: str
    session_id: str
    subscriber: str
    kind: EventKind
    text: str = ""
    entry: str = ""
    inputs: tuple[str, ...] = ()
    request_id: str | None = None
    follows: str | None = None

    def __post_init__(self) -> None:
        if not self.session_id:
            raise ValueError("ChannelEvent.session_id must not be empty")
        if not self.subscriber:
            raise ValueError("ChannelEvent.subscriber must not be empty")
