"""Voice platform dialects: parse a webhook into a `ChannelEvent`, write a `VoicePlan` as XML."""

from __future__ import annotations

import re
from collections.abc import Mapping

from hotline.base.errors import BadGatewayRequest
from hotline.flow.events import ChannelEvent, EventKind

__all__ = ["call_event", "caller_field", "field", "keys_event", "optional_digits", "optional_field"]

_DIGITS = re.compile(r"^[0-9*#]{1,32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def field(form: Mapping[str, str], name: str, pattern: re.Pattern[str] | None = None) -> str:
    """A required form field, stripped; raises `BadGatewayRequest` naming it."""
    value = form.get(name)
    if value is None or not value.strip():
        raise BadGatewayRequest(f"missing field {name}")
    value = value.strip()
    if len(value) > 64 or _CONTROL.search(value):
        raise BadGatewayRequest(f"malformed field {name}")
    if pattern is not None and not pattern.fullmatch(value):
        raise BadGatewayRequest(f"malformed field {name}")
    return value


def caller_field(form: Mapping[str, str], name: str) -> str:
    """The caller field: a number, or what platforms send instead (`anonymous`,
    `client:alice`, a SIP URI), all ASCII. Digits of another script (`+86١٣٨…`,
    full-width `+８６１３８…`) are refused, as the USSD dialect refuses them."""
    value = field(form, name)
    if not value.isascii():
        raise BadGatewayRequest(f"malformed field {name}: expected ASCII (digits 0-9)")
    return value


def optional_field(form: Mapping[str, str], name: str) -> str:
    """An optional form field, stripped ("" when absent); refuses control characters."""
    value = (form.get(name) or "").strip()
    if len(value) > 64 or _CONTROL.search(value):
        raise BadGatewayRequest(f"malformed field {name}")
    return value


def optional_digits(form: Mapping[str, str], name: str) -> str | None:
    """Keys pressed (`0-9*#`), `None` when absent or empty."""
    value = form.get(name)
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not _DIGITS.fullmatch(value):
        raise BadGatewayRequest(f"malformed field {name}: expected keys 0-9 * #")
    return value


def keys_event(digits: str) -> tuple[EventKind, str]:
    """What pressed keys mean: `*` repeats; else the input, a trailing `#` dropped."""
    keys = digits.rstrip("#") or "#"
    return ("repeat", "") if keys == "*" else ("input", keys)


def call_event(
    dialect: str,
    session: str,
    caller: str,
    *,
    ended: bool,
    digits: str | None,
    query: Mapping[str, str],
    entry: str = "",
) -> ChannelEvent:
    """The event of a webhook: the call ended, keys were pressed, the Gather timed out
    (`?timeout=1` on our own redirect), or else a call (re)starting."""
    kind: EventKind
    text = ""
    if ended:
        kind = "hangup"
    elif digits is not None:
        kind, text = keys_event(digits)
    elif query.get("timeout") == "1":
        kind = "timeout"
    else:
        kind = "start"
    return ChannelEvent("ivr", dialect, session, caller, kind, text, entry=entry)
