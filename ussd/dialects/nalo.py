"""Nalo Solutions (Ghana) USSD callbacks: a JSON object in, a JSON object out.

Request (`POST`, `application/json`): `USERID` (the application's id at Nalo), `MSISDN`
(digits), `USERDATA`, `MSGTYPE` (boolean: `true` on the dial, `false` after), `NETWORK`,
and `SESSIONID`. Without `SESSIONID` (older accounts; ussd-builder keys on the number)
the session is the subscriber's number. No service code is sent: the code this route
serves is configured (`ussd.service_codes.nalo`, default `*100#`).

- **Newest input only**: `USERDATA` is the latest answer; on the dial it is the dialled
  string (direct dial: `*920*1*2#` under `*920*1#` starts with the input `2`).
- **Continue / end**: `{"USERID", "MSISDN", "MSG", "MSGTYPE": true}` keeps the session;
  `MSGTYPE: false` ends it (the same field as the request's, meaning "more to come").
- **Retries**: none documented, no per-request id. A repeated dial is recognised; a
  repeated answer is applied as a new input (it cannot be told from the same key).
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

__all__ = ["DIALECT", "NAME", "Nalo", "gateway", "parse", "reply"]

NAME = "nalo"
_REQUIRED = ("MSISDN", "USERDATA", "MSGTYPE")
START_ID = "new"


def parse(form: Mapping[str, str], settings: UssdSettings) -> ChannelEvent:
    """The channel event of one callback; raises `BadGatewayRequest(reason)`."""
    _json.required(form, _REQUIRED)
    subscriber = _json.phone(form["MSISDN"], "MSISDN")
    raw_session = form.get("SESSIONID") or subscriber.lstrip("+")
    session = _json.session_id(raw_session, "SESSIONID")
    new = _json.flag(form, "MSGTYPE")
    data = _json.input_text(form["USERDATA"], "USERDATA", settings)
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
    """`{"USERID", "MSISDN", "MSG", "MSGTYPE"}`: `MSGTYPE` true while the session goes on."""
    return _json.answer(
        {
            **_json.echo(form, "USERID", "MSISDN"),
            "MSG": page.text,
            "MSGTYPE": not page.ends,
        }
    )


def gateway(settings: Settings, base: Gateway) -> Gateway:
    """No signature on Nalo's callbacks: the secret path token (`ussd.path_tokens.nalo`)
    or an allow-list at the proxy. The subscriber is `MSISDN`."""
    return _json.gateway(settings, base, NAME, DIALECT, subscriber_field="MSISDN")


class Nalo:
    """This module as a `UssdDialect` object."""

    __slots__ = ()
    NAME: ClassVar[str] = NAME
    read = staticmethod(read_json)
    parse = staticmethod(parse)
    reply = staticmethod(reply)
    gateway = staticmethod(gateway)


DIALECT: Final[UssdDialect] = Nalo()
