"""One USSD reply, laid out: the text of the page shown and whether it ends the session."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UssdPage"]


@dataclass(frozen=True, slots=True)
class UssdPage:
    """The page of a screen to send (without `CON `/`END `), and how many the screen has.

    `ends` is true only for an ending screen's last page: the others go out as `CON`
    with `98`, so the subscriber can read on.
    """

    text: str
    ends: bool
    pages: int
