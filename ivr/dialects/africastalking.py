"""Africa's Talking voice callbacks and their XML.

Request: `isActive, sessionId, callerNumber, destinationNumber, direction`
(+ `dtmfDigits` after `<GetDigits>`; `isActive=0` is the end-of-call notice).
Reply: `<Response><GetDigits …><Play url=…/></GetDigits><Redirect>…</Redirect></Response>`.
`<GetDigits>` falls through on silence like TwiML, so the `<Redirect>` carries
`?timeout=1`. There is no hangup verb: the call ends after the last action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Final

from hotline.base.errors import BadGatewayRequest
from hotline.flow.events import ChannelEvent
from ivr.dialects import call_event, caller_field, field, optional_digits, optional_field
from ivr.dialects.base import VoiceDialect
from ivr.render import VoicePlan
from ivr.voicexml import document, element

__all__ = ["DIALECT", "NAME", "AfricasTalking", "parse", "write"]

NAME = "africastalking"
_SESSION = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def parse(form: Mapping[str, str], query: Mapping[str, str]) -> ChannelEvent:
    """One callback as an event; raises `BadGatewayRequest` with the reason."""
    active = (form.get("isActive") or "").strip()
    if active not in ("0", "1"):
        raise BadGatewayRequest("missing or malformed field isActive (expected 0 or 1)")
    session = field(form, "sessionId", _SESSION)
    caller = caller_field(form, "callerNumber")
    digits = optional_digits(form, "dtmfDigits")

    called = optional_field(form, "destinationNumber")  # the entry: which hotline was called
    return call_event(
        NAME, session, caller, ended=active == "0", digits=digits, query=query, entry=called
    )


def write(plan: VoicePlan) -> str:
    """The Africa's Talking document for a plan."""
    plays = [element("Play", {"url": clip.url}) for clip in plan.clips]
    actions: list[str] = []
    if plan.gather is not None:
        gather = plan.gather
        attrs = {
            "callbackUrl": gather.action,
            "finishOnKey": gather.finish_on_key,
            "numDigits": gather.num_digits,
            "timeout": gather.timeout,
        }
        actions.append(element("GetDigits", attrs, children=plays))
        actions.append(element("Redirect", text=gather.timeout_url))
    else:
        actions.extend(plays)
        if plan.dial is not None:
            actions.append(element("Dial", {"phoneNumbers": plan.dial}))
    return document(element("Response", children=actions))


class AfricasTalking:
    """This module as a `VoiceDialect` object, which the voice routes hold."""

    __slots__ = ()
    NAME: ClassVar[str] = NAME
    parse = staticmethod(parse)
    write = staticmethod(write)


DIALECT: Final[VoiceDialect] = AfricasTalking()
