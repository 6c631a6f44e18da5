"""Twilio's voice webhook and TwiML (also spoken by SignalWire cXML and Telnyx TeXML).

Request: `CallSid, From, To, CallStatus` (+ `Digits` after a `<Gather>`); our own
`<Redirect>` after the `<Gather>` adds `?timeout=1`, because TwiML falls through
silently when nobody presses a key. Reply: `<Response>` with `<Gather input="dtmf">`
wrapping the `<Play>`s, then that `<Redirect>`; or the `<Play>`s and `<Hangup/>`/`<Dial>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Final

from hotline.flow.events import ChannelEvent
from ivr.dialects import call_event, caller_field, field, optional_digits, optional_field
from ivr.dialects.base import VoiceDialect
from ivr.render import VoicePlan
from ivr.voicexml import document, element

__all__ = ["DIALECT", "ENDED_STATUSES", "NAME", "Twilio", "parse", "write"]

NAME = "twilio"
ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse(form: Mapping[str, str], query: Mapping[str, str]) -> ChannelEvent:
    """One webhook request as an event; raises `BadGatewayRequest` with the reason."""
    call = field(form, "CallSid", _SID)
    caller = caller_field(form, "From")
    status = (form.get("CallStatus") or "").strip()
    digits = optional_digits(form, "Digits")

    ended = status in ENDED_STATUSES
    called = optional_field(form, "To")  # the entry: which hotline was called
    return call_event(NAME, call, caller, ended=ended, digits=digits, query=query, entry=called)


def write(plan: VoicePlan) -> str:
    """The TwiML document for a plan."""
    plays = [element("Play", text=clip.url) for clip in plan.clips]
    verbs: list[str] = []
    if plan.gather is not None:
        gather = plan.gather
        attrs = {
            "action": gather.action,
            "finishOnKey": gather.finish_on_key,
            "input": "dtmf",
            "method": "POST",
            "numDigits": gather.num_digits,
            "timeout": gather.timeout,
        }
        verbs.append(element("Gather", attrs, children=plays))
        verbs.append(element("Redirect", {"method": "POST"}, text=gather.timeout_url))
    else:
        verbs.extend(plays)
        if plan.dial is not None:
            verbs.append(element("Dial", text=plan.dial))
        else:
            verbs.append(element("Hangup"))
    return document(element("Response", children=verbs))


class Twilio:
    """This module as a `VoiceDialect` object, which the voice routes hold."""

    __slots__ = ()
    NAME: ClassVar[str] = NAME
    parse = staticmethod(parse)
    write = staticmethod(write)


DIALECT: Final[VoiceDialect] = Twilio()
