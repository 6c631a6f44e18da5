"""Hubtel (Ghana) USSD callbacks: a JSON object in, a JSON object out.

Request (`POST`, `application/json`): `Mobile` (digits, no `+`), `SessionId`,
`ServiceCode` (`714`, or `714*5` for a sub-code), `Type` — `Initiation` (the dial),
`Response` (a reply), `Release` (the subscriber ended), `Timeout` (the network did) —,
`Message`, `Operator`, `Sequence`, `ClientState`. The newer Programmable Services send the
same fields with `Type` in lower case (`initiation`, `response`, `release`).

- **Newest input only**: `Message` is the subscriber's latest answer; on `Initiation` it
  is the dialled string, so `*714*5*1#` under the code `714*5` starts with the input `1`
  (direct dial).
- **Continue / end**: the answer `{"Message", "Type": "Response"}` keeps the session,
  `"Type": "Release"` ends it (lower case when the request's `Type` was); `Label` names
  the step and `ClientState` is sent back empty (we keep the session ourselves).
- **Retries**: `Sequence` numbers the requests of a session from 1; a repeated
  `Sequence` is the same request again (a retry gets the same screen, nothing runs
  twice) and a request whose `Sequence` does not follow the session's last is refused.
- `Release` / `Timeout` close our session; the body of our answer is not shown.
"""

from __future__ import annotations

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

__all__ = ["DIALECT", "NAME", "Hubtel", "gateway", "parse", "reply"]

NAME = "hubtel"
_REQUIRED = ("Mobile", "SessionId", "ServiceCode", "Type", "Message")
_KINDS: Final[dict[str, _json.Turn]] = {
    "initiation": "start",
    "response": "input",
    "release": "hangup",
    "timeout": "hangup",
}
_MAX_SEQUENCE = 10_000


def _sequence(form: Mapping[str, str]) -> int | None:
    raw = form.get("Sequence")
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= _MAX_SEQUENCE:
        raise BadGatewayRequest(f"Sequence must be a whole number 1-{_MAX_SEQUENCE}")
    return int(raw)


def parse(form: Mapping[str, str], settings: UssdSettings) -> ChannelEvent:
    """The channel event of one callback; raises `BadGatewayRequest(reason)`."""
    _json.required(form, _REQUIRED)
    kind = _KINDS.get(form["Type"].strip().lower())
    if kind is None:
        raise BadGatewayRequest("Type must be Initiation, Response, Release or Timeout")
    session = _json.session_id(form["SessionId"], "SessionId")
    subscriber = _json.phone(form["Mobile"], "Mobile")
    code = _json.service_code(form["ServiceCode"], "ServiceCode")
    message = _json.input_text(form["Message"], "Message", settings)
    sequence = _sequence(form)
    # Only an answer continues a request: it must follow the session's last one.
    follows = None if sequence is None or sequence == 1 or kind != "input" else sequence - 1
    return _json.event(
        NAME,
        kind,
        session=session,
        subscriber=subscriber,
        code=code,
        text=message,
        settings=settings,
        request_id=None if sequence is None else f"seq:{sequence}",
        follows=None if follows is None else f"seq:{follows}",
    )


def reply(
    page: UssdPage, label: str, form: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """`{"Message", "Type": "Response" | "Release", "Label", "ClientState"}`; the
    `Type` words in lower case when the request's were (Programmable Services)."""
    lower = (form or {}).get("Type", "x")[:1].islower()
    kind = "Release" if page.ends else "Response"
    return _json.answer(
        {
            "Message": page.text,
            "Type": kind.lower() if lower else kind,
            "Label": label,
            "ClientState": "",
        }
    )


def gateway(settings: Settings, base: Gateway) -> Gateway:
    """Hubtel's callbacks carry no signature: guard the route with the secret path
    token (`ussd.path_tokens.hubtel`) or an allow-list at the proxy. The subscriber is
    `Mobile`."""
    return _json.gateway(settings, base, NAME, DIALECT, subscriber_field="Mobile")


class Hubtel:
    """This module as a `UssdDialect` object."""

    __slots__ = ()
    NAME: ClassVar[str] = NAME
    read = staticmethod(read_json)
    parse = staticmethod(parse)
    reply = staticmethod(reply)
    gateway = staticmethod(gateway)


DIALECT: Final[UssdDialect] = Hubtel()
