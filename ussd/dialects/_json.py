"""What the JSON aggregator dialects (Hubtel, Arkesel, Nalo, Beem) share: field checks
with the same reasons as Africa's Talking's, the channel event of a dial / an answer /
a hang-up (the dialled string split into service code and direct-dial inputs), the
JSON answer with the request's ids echoed, and the route's guard (path token, a polite
answer in the gateway's own shape).

Pure functions on plain data, except `polite`, which builds the guard's answer.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

from aiohttp import web

from hotline.base.config import Settings, UssdSettings
from hotline.base.errors import BadGatewayRequest
from hotline.flow.events import ChannelEvent
from hotline.web.forms import GatewayForm, gateway_form
from hotline.web.guards import Gateway, polite_sentence
from ussd.page import UssdPage

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_CODE",
    "Turn",
    "answer",
    "dialled",
    "echo",
    "event",
    "fallback_code",
    "flag",
    "gateway",
    "input_text",
    "path_token",
    "phone",
    "polite",
    "required",
    "service_code",
    "session_id",
]

CONTENT_TYPE = "application/json; charset=utf-8"
DEFAULT_CODE = "*100#"
CHANNEL = "ussd"

#: What one callback of these gateways can be: the dial, an answer, the session's end.
Turn = Literal["start", "input", "hangup"]

_SESSION_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_PHONE = re.compile(r"\+?[0-9]{3,20}")
_CODE = re.compile(r"\*?[0-9*]{1,30}#?")
_DIALLED = re.compile(r"\*[0-9*]{1,60}#")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def required(form: Mapping[str, str], names: tuple[str, ...]) -> None:
    """Raise the reason a request lacks any of `names`."""
    missing = [name for name in names if name not in form]
    if missing:
        raise BadGatewayRequest(f"missing field(s): {', '.join(missing)}")


def session_id(value: str, name: str) -> str:
    if not _SESSION_ID.fullmatch(value):
        raise BadGatewayRequest(f"{name} must be 1-128 characters of A-Z a-z 0-9 _ . : -")
    return value


def phone(value: str, name: str) -> str:
    """The subscriber as E.164 with `+` (these gateways send the digits only)."""
    value = value.strip()
    if not _PHONE.fullmatch(value):
        raise BadGatewayRequest(f"{name} must be a phone number (3-20 digits 0-9)")
    return value if value.startswith("+") else "+" + value


def service_code(value: str, name: str) -> str:
    """`714`, `*714#` or `714*5` as the entry `*714#` / `*714*5#`."""
    value = value.strip()
    if not _CODE.fullmatch(value) or not value.strip("*#"):
        raise BadGatewayRequest(f"{name} must be a USSD code (0-9 and *, e.g. *714#)")
    return "*" + value.strip("*#") + "#"


def flag(form: Mapping[str, str], name: str) -> bool:
    """A JSON boolean (or the strings `true` / `false`, which some gateways send)."""
    value = form[name].strip().lower()
    if value not in ("true", "false"):
        raise BadGatewayRequest(f"{name} must be true or false")
    return value == "true"


def input_text(value: str, name: str, settings: UssdSettings) -> str:
    """What the subscriber typed: bounded, without control characters."""
    if len(value) > settings.max_text_chars:
        raise BadGatewayRequest(f"{name} is longer than {settings.max_text_chars} characters")
    if _CONTROL.search(value):
        raise BadGatewayRequest(f"{name} may not hold control characters")
    return value.strip()


def dialled(text: str, code: str) -> tuple[str, ...]:
    """The direct-dial inputs of a first request's dialled string: `*714*5*1#` under the
    code `*714*5#` is `("1",)`. Anything that is not a dial of `code` brings none."""
    text = text.strip()
    if not _DIALLED.fullmatch(text):
        return ()
    stem = code[:-1]
    if text == code or not text.startswith(stem + "*"):
        return ()
    return tuple(part for part in text[len(stem) + 1 : -1].split("*") if part)


def event(
    name: str,
    kind: Turn,
    *,
    session: str,
    subscriber: str,
    code: str,
    text: str,
    settings: UssdSettings,
    request_id: str | None = None,
    follows: str | None = None,
) -> ChannelEvent:
    """The channel event of one callback of the gateway `name`: on the dial (`start`)
    `text` is the dialled string and brings its direct-dial inputs; on an answer it is
    the input; a hang-up carries none."""
    if kind == "start":
        inputs = dialled(text, code)
        if len(inputs) > settings.max_inputs_per_request:
            raise BadGatewayRequest("the dialled string holds too many inputs")
        return ChannelEvent(
            channel=CHANNEL,
            dialect=name,
            session_id=session,
            subscriber=subscriber,
            kind="start",
            entry=code,
            inputs=inputs,
            request_id=request_id,
            follows=follows,
        )
    return ChannelEvent(
        channel=CHANNEL,
        dialect=name,
        session_id=session,
        subscriber=subscriber,
        kind=kind,
        text=text if kind == "input" else "",
        entry=code,
        request_id=request_id,
        follows=follows,
    )


def echo(form: Mapping[str, str] | None, *names: str) -> dict[str, str]:
    """The request's `names` to send back as they came (empty when absent: the guard's
    polite answer may have no request fields to echo)."""
    form = form or {}
    return {name: form.get(name, "") for name in names}


def answer(body: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The JSON answer (UTF-8 as is: Chinese stays readable on the wire)."""
    return json.dumps(body, ensure_ascii=False), {"Content-Type": CONTENT_TYPE}


class _Dialect(Protocol):
    def read(self, request: web.Request) -> Awaitable[GatewayForm]: ...

    def reply(
        self, page: UssdPage, label: str, form: Mapping[str, str]
    ) -> tuple[str, dict[str, str]]: ...


def polite(
    dialect: _Dialect,
) -> Callable[[web.Request, str], Awaitable[web.StreamResponse]]:
    """The guard's answer (rate limits) as this gateway's ending reply."""

    async def reply(request: web.Request, reason: str) -> web.StreamResponse:
        _, text = polite_sentence(request.app, reason)
        try:
            fields: Mapping[str, str] = (await gateway_form(request, dialect.read)).fields
        except BadGatewayRequest:
            fields = {}
        body, headers = dialect.reply(UssdPage(text, ends=True, pages=1), "polite", fields)
        return web.Response(body=body.encode("utf-8"), headers=headers)

    return reply


def gateway(
    settings: Settings, base: Gateway, name: str, dialect: _Dialect, *, subscriber_field: str
) -> Gateway:
    """The route's guard for a gateway that signs nothing: the secret path token
    (`ussd.path_tokens.<name>`) or an allow-list at the proxy, the subscriber read from
    `subscriber_field` and the polite answer in `dialect`'s shape."""
    return dataclasses.replace(
        base,
        subscriber_field=subscriber_field,
        path_token=path_token(settings, name),
        polite=polite(dialect),
    )


def fallback_code(settings: UssdSettings, name: str) -> str:
    """The service code a dialect that does not send one serves (`ussd.service_codes`)."""
    return settings.service_codes.get(name, DEFAULT_CODE)


def path_token(settings: Settings, name: str) -> str | None:
    """The dialect's secret path segment (`ussd.path_tokens`), if one is set."""
    token = settings.ussd.path_tokens.get(name)
    return token.get_secret_value() if token else None
