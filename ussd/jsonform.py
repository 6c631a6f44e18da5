"""Strict JSON decoding for the aggregators that POST a JSON object (Hubtel, Arkesel, Nalo,
Beem), into the same flat `name → text` fields a form gives.

A dialect's `parse` reads plain strings, whatever the envelope: a string stays itself, a
boolean becomes `true`/`false`, an integer its digits, `null` is as if the field were
absent, and one nested object is flattened with a dot (Beem's `payload.request_id`).
Anything else — not an object, a fraction, a list, deeper nesting, more than
`MAX_FIELDS` fields, a body that is not UTF-8 — is a malformed request: 400 and a reason.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from hotline.base.errors import BadGatewayRequest
from hotline.web.forms import GatewayForm
from ussd.form import read_bounded

__all__ = ["JSON_CONTENT_TYPE", "MAX_FIELDS", "decode_json", "read_json"]

JSON_CONTENT_TYPE = "application/json"
MAX_FIELDS = 32


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # before int: `True` is an int too
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    raise BadGatewayRequest(f"field {name[:40]!r} must be a string, an integer or a boolean")


def decode_json(body: bytes, *, max_fields: int = MAX_FIELDS) -> dict[str, str]:
    """Flat fields of a JSON object body; raises `BadGatewayRequest` on anything else."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadGatewayRequest(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadGatewayRequest(f"body is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise BadGatewayRequest("body must be a JSON object")
    fields: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                if isinstance(item, dict):
                    raise BadGatewayRequest(f"field {name[:40]!r} is nested too deeply")
                flat = _text(f"{name}.{inner}", item)
                if flat is not None:
                    fields[f"{name}.{inner}"] = flat
            continue
        flat = _text(name, value)
        if flat is not None:
            fields[name] = flat
        if len(fields) > max_fields:
            raise BadGatewayRequest(f"more than {max_fields} fields")
    if len(fields) > max_fields:
        raise BadGatewayRequest(f"more than {max_fields} fields")
    return fields


async def read_json(request: web.Request) -> GatewayForm:
    """The request's JSON object as flat fields (`hotline.web.forms` reader)."""
    return GatewayForm(decode_json(await read_bounded(request, JSON_CONTENT_TYPE)))
