"""Strict `application/x-www-form-urlencoded` decoding for gateway callbacks.

aiohttp's `request.post()` decodes leniently (bad bytes become U+FFFD) and lets a field
repeat; a gateway request with either is malformed, so we want a 400 with a reason, not a
guess. The standard library's `parse_qsl` states the rules; yarl's `query_to_pairs`
(the same decoding, ~5x faster) reads the bodies where the two cannot differ.

`read_form` is the USSD gateway's form reader (`hotline.web.forms`): the gateway guard calls
it, the routes get its result back from the request.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from aiohttp import web
from yarl import query_to_pairs

from hotline.base.errors import BadGatewayRequest
from hotline.web.forms import BODY_FAILURES, GatewayForm, refusal
from hotline.web.keys import SETTINGS

__all__ = [
    "FORM_CONTENT_TYPE",
    "MAX_FIELDS",
    "decode_form",
    "decode_read",
    "read_bounded",
    "read_form",
]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 32

# Bodies only the strict rules can judge: a field without `=` (an empty one too), or an
# escaped byte ≥ 0x80 (its decoding may not be UTF-8). Any other body decodes the same
# under both parsers; measured: a gateway callback in ~4 µs instead of ~11 µs.
_FIELDS_WITH_EQUALS = re.compile(r"[^&=]*=[^&]*(?:&[^&=]*=[^&]*)*")
_HIGH_ESCAPE = re.compile(r"%[89A-Fa-f]")


def _decode(body: bytes, max_fields: int) -> tuple[list[tuple[str, str]], bool]:
    """Every `(name, value)` in order, and whether nothing was stripped to get them.

    Surrounding whitespace is ignored (some gateways end the body with a newline).
    """
    try:
        raw_text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadGatewayRequest(f"body is not UTF-8 (byte {exc.start})") from None
    text = raw_text.strip()
    return _pairs(text, max_fields), len(text) == len(raw_text)


def _pairs(text: str, max_fields: int) -> list[tuple[str, str]]:
    if not text:
        return []
    if (
        text.count("&") < max_fields
        and _FIELDS_WITH_EQUALS.fullmatch(text)
        and not _HIGH_ESCAPE.search(text)
    ):
        return query_to_pairs(text)
    try:
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=max_fields,
        )
    except UnicodeDecodeError:
        raise BadGatewayRequest("a form field is not valid UTF-8 after percent-decoding") from None
    except ValueError as exc:
        message = str(exc)
        if "Max number of fields" in message:
            raise BadGatewayRequest(f"more than {max_fields} form fields") from None
        raise BadGatewayRequest("body is not a form (name=value pairs joined by &)") from None


def _fields(pairs: list[tuple[str, str]]) -> dict[str, str]:
    fields = dict(pairs)
    if len(fields) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise BadGatewayRequest(f"form field {name[:40]!r} appears more than once")
            seen.add(name)
    return fields


def decode_form(body: bytes, *, max_fields: int = MAX_FIELDS) -> dict[str, str]:
    """Fields of a form body; raises `BadGatewayRequest` on anything malformed."""
    return _fields(_decode(body, max_fields)[0])


def _body_limit(request: web.Request, content_type: str) -> int:
    """The largest body a gateway callback may have; refuses another Content-Type."""
    if request.content_type != content_type:
        raise BadGatewayRequest(f"Content-Type must be {content_type}")
    return request.app[SETTINGS].max_body_bytes


def _too_large(max_bytes: int) -> BadGatewayRequest:
    return BadGatewayRequest(f"body is larger than {max_bytes} bytes")


async def read_bounded(request: web.Request, content_type: str) -> bytes:
    """The body of a gateway callback of `content_type`, within `max_body_bytes` (the
    declared length checked before reading); raises `BadGatewayRequest` otherwise."""
    max_bytes = _body_limit(request, content_type)
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    try:  # `read_body` inlined: one coroutine less on every USSD request
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(max_bytes) from None
    except BODY_FAILURES as exc:
        raise refusal(request, exc) from None
    if len(body) > max_bytes:
        raise _too_large(max_bytes)
    return body


async def read_form(request: web.Request) -> GatewayForm:
    """The request's form fields; raises `BadGatewayRequest` if it is not a sane form."""
    return _gateway_form(await read_bounded(request, FORM_CONTENT_TYPE))


def decode_read(request: web.Request, body: bytes) -> GatewayForm:
    """`read_form` of a request whose body the gateway guard has read (`Gateway.decode`):
    the same checks and reasons, without reading."""
    max_bytes = _body_limit(request, FORM_CONTENT_TYPE)
    if len(body) > max_bytes:
        raise _too_large(max_bytes)
    return _gateway_form(body)


def _gateway_form(body: bytes) -> GatewayForm:
    pairs, exact = _decode(body, MAX_FIELDS)
    # Every field as the guard would read it only if nothing was stripped.
    return GatewayForm(_fields(pairs), pairs if exact else None)
