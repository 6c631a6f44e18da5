"""Arkesel (Ghana) USSD callbacks: a JSON object in, a JSON object out.

Request (`POST`, `application/json`): `sessionID`, `userID` (the application's id at
Arkesel), `newSession` (boolean: `true` on the dial), `msisdn` (digits), `userData`,
`network`. No service code is sent: the code this route serves is configured
(`ussd.service_codes.arkesel`, default `*100#`).

- **Newest input only**: `userData` is the latest answer; on the dial it is the dialled
  string, so `*928*44*1#` under `*928*44#` starts with the input `1`.
- **Continue / end**: `{"sessionID", "userID", "msisdn", "message", "continueSession":
  true}` keeps the session; `continueSession: false` ends it.
- **Retries**: Arkesel documents none and sends no per-request id. A repeated dial
  (`newSession: true` again on the same `sessionID`) is recognised and shows the same
  screen; a repeated answer cannot be told from the subscriber pressing the same key
  again, so it is applied as a new input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from hotline.base.config import Settings, UssdSettings
from hotline.flow.events import ChannelEvent
from hotline.web.guards import Gateway
from ussd.dialects import _json
from ussd.dialects.base import UssdDialect
from ussd.jsonform import read_json
from ussd.page import UssdPage

__all__ = ["DIALECT", "NAME", "Arkesel", "gateway", "parse", "reply"]

NAME = "arkesel"
_REQUIRED = ("sessionID", "newSession", "msisdn", "userData")
START_ID = "new"


def parse(form: Mapping[str, str], settings: UssdSettings) -> ChannelEvent:
    """The channel event of one callback; raises `BadGatewayRequest(reason)`."""
    _json.required(form, _REQUIRED)
    session = _json.session_id(form["sessionID"], "sessionID")
    subscriber = _json.phone(form["msisdn"], "msisdn")
    new = _json.flag(form, "newSession")
    data = _json.input_text(form["userData"], "userData", settings)
    return _json.event(
        NAME,
        "start" if new else "input",
        session=session,
        subscriber=subscriber,
        code=_json.fallback_code(settings, NAME),
        text=data,
        settings=settings,
        # A repeated dial is the same request; answers carry no id.
        request_id=START_ID if new else None,
    )


def reply(
    page: UssdPage, label: str, form: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """`{"sessionID", "userID", "msisdn", "message", "continueSession"}`, the ids echoed."""
    return _json.answer(
        {
            **_json.echo(form, "sessionID", "userID", "msisdn"),
            "message": page.text,
            "continueSession": not page.ends,
        }
    )


def gateway(settings: Settings, base: Gateway) -> Gateway:
    """No signature on Arkesel's callbacks: the secret path token
    (`ussd.path_tokens.arkesel`) or an allow-list at the proxy. The subscriber is
    `msisdn`."""
    return _json.gateway(settings, base, NAME, DIALECT, subscriber_field="msisdn")


class Arkesel:
    """This module as a `UssdDialect` object."""

    __slots__ = ()
    NAME: ClassVar[str] = NAME
    read = staticmethod(read_json)
    parse = staticmethod(parse)
    reply = staticmethod(reply)
    gateway = staticmethod(gateway)


DIALECT: Final[UssdDialect] = Arkesel()
