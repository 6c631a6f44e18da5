"""Beem Africa (Tanzania) USSD callbacks: a JSON object in, a JSON object out.

Request (`POST`, `application/json`): `session_id`, `msisdn` (digits), `serviceCode`,
`operator`, `command` — `initiate` (the dial), `continue` (a reply), `terminate` (the
session ended) — and `payload: {request_id, response}`.

- **Newest input only**: `payload.response` is the latest answer; on `initiate` it is
  the dialled string when the gateway sends one (direct dial).
- **Continue / end**: `{"msisdn", "operator", "session_id", "command": "continue",
  "payload": {"request_id", "request": <screen>}}` keeps the session; `"command":
  "terminate"` ends it. (ussd-builder drops `session_id` from continue replies — a bug
  of that library, not of the format: we always echo it.)
- **Retries**: `payload.request_id` names each request; the same id again is a retry
  and gets the same screen, nothing runs twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Final

from hotline.base.config import Settings, UssdSettings
from hotline.base.errors import BadGatewayRequest
from hotline.flow.events import ChannelEvent
from hotline.web.guards import Gateway
from ussd.dialects import _json
from ussd.dialects.base import UssdDialect
from ussd.jsonform import read_json
from ussd.page import UssdPage

__all__ = ["DIALECT", "NAME", "Beem", "gateway", "parse", "reply"]

NAME = "beem"
_REQUIRED = ("session_id", "msisdn", "serviceCode", "command", "payload.request_id")
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_KINDS: Final[dict[str, _json.Turn]] = {
    "initiate": "start",
    "continue": "input",
    "terminate": "hangup",
}


def parse(form: Mapping[str, str], settings: UssdSettings) -> ChannelEvent:
    """The channel event of one callback; raises `BadGatewayRequest(reason)`."""
    _json.required(form, _REQUIRED)
    kind = _KINDS.get(form["command"].strip().lower())
    if kind is None:
        raise BadGatewayRequest("command must be initiate, continue or terminate")
    session = _json.session_id(form["session_id"], "session_id")
    subscriber = _json.phone(form["msisdn"], "msisdn")
    code = _json.service_code(form["serviceCode"], "serviceCode")
    request = form["payload.request_id"]
    if not _REQUEST_ID.fullmatch(request):
        raise BadGatewayRequest("payload.request_id must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    response = _json.input_text(form.get("payload.response", ""), "payload.response", settings)
    if kind == "input" and "payload.response" not in form:
        raise BadGatewayRequest("missing field(s): payload.response")
    return _json.event(
        NAME,
        kind,
        session=session,
        subscriber=subscriber,
        code=code,
        text=response,
        settings=settings,
        request_id=f"req:{request}",
    )


def reply(
    page: UssdPage, label: str, form: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """`{"msisdn", "operator", "session_id", "command", "payload": {"request_id",
    "request"}}`: `command` is `continue` or `terminate`."""
    echoed = _json.echo(form, "msisdn", "operator", "session_id", "payload.request_id")
    request_id = echoed.pop("payload.request_id")
    return _json.answer(
        {
            **echoed,
            "command": "terminate" if page.ends else "continue",
            "payload": {"request_id": request_id, "request": page.text},
        }
    )


def gateway(settings: Settings, base: Gateway) -> Gateway:
    """No signature on Beem's callbacks: the secret path token (`ussd.path_tokens.beem`)
    or an allow-list at the proxy. The subscriber is `msisdn`."""
    return _json.gateway(settings, base, NAME, DIALECT, subscriber_field="msisdn")


class Beem:
    """This module as a `UssdDialect` object."""

    __slots__ = ()
    NAME: ClassVar[str] = NAME
    read = staticmethod(read_json)
    parse = staticmethod(parse)
    reply = staticmethod(reply)
    gateway = staticmethod(gateway)


DIALECT: Final[UssdDialect] = Beem()
