"""Strict `application/x-www-form-urlencoded` decoding for gateway callbacks.

aiohttp's `request.post()` decodes leniently (bad bytes become U+FFFD) and lets a field
repeat; a gateway request with either is malformed, so we want a 400 with a reason, not a
guess. The standard library's `parse_qsl` does the decoding; this module adds the rules.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from hotline.errors import BadGatewayRequest

__all__ = ["FORM_CONTENT_TYPE", "MAX_FIELDS", "decode_form"]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 32


def decode_form(body: bytes, *, max_fields: int = MAX_FIELDS) -> dict[str, str]:
    """Fields of a form body; raises `BadGatewayRequest` on anything malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadGatewayRequest(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        pairs = parse_qsl(
            text.strip(),
            keep_blank_values=True,
            strict_parsing=bool(text.strip()),
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
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadGatewayRequest(f"form field {name[:40]!r} appears more than once")
        fields[name] = value
    return fields
