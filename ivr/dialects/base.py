"""What a voice platform dialect is: the typed protocol `ivr/dialects/<name>.py` meets.

A dialect parses the platform's webhook into a `ChannelEvent` and writes a `VoicePlan`
(clips to play, keys to gather, a number to dial) in the platform's XML. Pure: plain
mappings in, text out; the voice routes hold one `DIALECT` object per platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from hotline.flow.events import ChannelEvent
from ivr.render import VoicePlan

__all__ = ["VoiceDialect"]


class VoiceDialect(Protocol):
    """One voice platform's webhook and document format."""

    #: The platform's name in URLs, metrics and `ChannelEvent.dialect`.
    NAME: ClassVar[str]

    def parse(self, form: Mapping[str, str], query: Mapping[str, str]) -> ChannelEvent:
        """One webhook request as an event; raises `BadGatewayRequest` with the reason."""
        ...

    def write(self, plan: VoicePlan) -> str:
        """The platform's XML document for a plan."""
        ...
