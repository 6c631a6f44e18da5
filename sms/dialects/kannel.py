"""Kannel (smsbox) as the SMS gateway: `get-url`/`post-url` in, `sendsms` out.

Incoming. An smsbox `sms-service` calls hotline for every message; the get-url this
dialect reads (docs/sms.md has the whole kannel.conf):

    get-url = "http://HOST:PORT/sms/kannel?from=%p&to=%P&text=%a&coding=%c&charset=%C&id=%I"

`coding` is Kannel's (0 GSM text, 1 binary, 2 UCS-2); `charset` says how `text` is
encoded — UTF-8, or UTF-16BE bytes for a UCS-2 message when the service has no
`mo-recode = true`. A `post-url` sends the text as the body, its charset in
`Content-Type` and the addresses and coding as `X-Kannel-From`/`-To`/`-Coding` headers.
Anything malformed — a missing or odd address, binary or unknown coding, an unknown
charset, bytes that are not that charset — is `BadGatewayRequest` (HTTP 400 with the
reason). A well-formed message the subscriber made too long (`sms.max_text_chars`) is
`RefusedMo`: the answer is a polite SMS saying so.

The reply is the body of the answer (smsbox sends it as the MT); a UCS-2 reply carries
`X-Kannel-Coding: 2` (the service needs `accept-x-kannel-headers = true`), else Kannel
sends Chinese as `?`. No reply (a duplicate) is an empty body: the service's
`omit-empty = true` sends nothing.

Outgoing. `sendsms_params` builds the query of smsbox's `sendsms` interface (UTF-8 text,
`coding=2` for UCS-2, `dlr-mask`/`dlr-url` pointing at `/sms/kannel/dlr?ref=…`);
`sendsms_outcome` judges its answer; `parse_report` reads the delivery report.
"""

from __future__ import annotations

import codecs
import re
from typing import Literal
from urllib.parse import parse_qsl, urlencode

from hotline.base.config import SmsSettings
from hotline.base.errors import BadGatewayRequest
from sms.conversation import IncomingSms, RefusedMo, ServiceNumbers
from sms.dialects.base import DeliveryReport, SendOutcome, WireRequest
from sms.render import TOO_LONG_KEY, SmsText
from sms.segments import Segments

__all__ = [
    "DLR_MASK",
    "NAME",
    "REPORT_PATH",
    "get_url",
    "parse",
    "parse_report",
    "reply",
    "sendsms_outcome",
    "sendsms_params",
]

NAME = "kannel"
REPORT_PATH = "/sms/kannel/dlr"
#: 1 delivered, 2 failed, 4 buffered, 8 SMSC accepted, 16 SMSC rejected.
DLR_MASK = 1 | 2 | 4 | 8 | 16
_MAX_FIELDS = 32
_SENDER = re.compile(r"\+?[0-9]{3,20}")
_RECEIVER = re.compile(r"\+?[0-9A-Za-z]{1,20}")
_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")  # not \n, \r
_CHARSET = re.compile(r"charset=\"?([A-Za-z0-9_\-:.]{1,40})\"?", re.IGNORECASE)
_DLR_STATES: dict[int, Literal["delivered", "failed", "accepted", "buffered"]] = {
    1: "delivered",
    2: "failed",
    4: "buffered",
    8: "accepted",
    16: "failed",
}


def get_url(base: str) -> str:
    """The smsbox `get-url` for a hotline reachable at `base` (`http://127.0.0.1:8080`)."""
    return f"{base.rstrip('/')}/sms/kannel?from=%p&to=%P&text=%a&coding=%c&charset=%C&id=%I"


def _fields(query: str) -> dict[str, str]:
    """Query fields as latin-1 strings (one character per byte: UTF-16BE survives)."""
    if query.count("&") >= _MAX_FIELDS:
        raise BadGatewayRequest(f"more than {_MAX_FIELDS} query fields")
    try:
        pairs = parse_qsl(
            query, keep_blank_values=True, encoding="latin-1", max_num_fields=_MAX_FIELDS
        )
    except ValueError as exc:
        raise BadGatewayRequest("query string is malformed") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadGatewayRequest(f"field {name[:16]!r} given twice")
        fields[name] = value
    return fields


def _decode(raw: bytes, charset: str, coding: int) -> str:
    name = charset or ("UTF-16BE" if coding == 2 else "UTF-8")
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise BadGatewayRequest(f"unknown charset {name[:40]!r}") from None
    try:
        return raw.decode(codec.name)
    except UnicodeDecodeError:
        raise BadGatewayRequest(f"text is not valid {name[:40]}") from None


def parse(
    request: WireRequest, settings: SmsSettings, numbers: ServiceNumbers | None = None
) -> IncomingSms:
    """The incoming message of one get-url or post-url call; `BadGatewayRequest` if
    malformed. `numbers`: the app's `sms.service_numbers` (built from `settings` when
    not given)."""
    fields = _fields(request.query)
    headers = {k.lower(): v for k, v in request.headers.items()}
    if request.method == "POST":
        sender = fields.get("from") or headers.get("x-kannel-from", "")
        receiver = fields.get("to") or headers.get("x-kannel-to", "")
        coding_text = fields.get("coding") or headers.get("x-kannel-coding", "0")
        found = _CHARSET.search(headers.get("content-type", ""))
        charset = found.group(1) if found else ""
        raw = request.body
    else:
        missing = [name for name in ("from", "to", "text") if name not in fields]
        if missing:
            raise BadGatewayRequest(f"missing query field(s): {', '.join(missing)}")
        sender, receiver = fields["from"], fields["to"]
        coding_text = fields.get("coding") or "0"
        charset = fields.get("charset", "")
        raw = fields["text"].encode("latin-1")
    sender = sender.strip()
    if not _SENDER.fullmatch(sender):
        raise BadGatewayRequest("from must be a phone number (+ and 3-20 digits 0-9)")
    if not _RECEIVER.fullmatch(receiver.strip()):
        raise BadGatewayRequest("to must be 1-20 letters or digits")
    numbers = numbers or ServiceNumbers.from_settings(settings)
    if not numbers.serves(receiver.strip()):
        raise BadGatewayRequest("to is not one of this deployment's sms.service_numbers")
    if coding_text not in ("0", "1", "2"):
        raise BadGatewayRequest("coding must be 0 (text), 1 (binary) or 2 (UCS-2)")
    coding = int(coding_text)
    if coding == 1:
        raise BadGatewayRequest("binary messages (coding=1) are not served")
    text = _decode(raw, charset, coding)
    if _CONTROL.search(text):
        raise BadGatewayRequest("text may not hold control characters")
    message_id = fields.get("id") or headers.get("x-kannel-id") or None
    if message_id is not None and not _ID.fullmatch(message_id):
        raise BadGatewayRequest("id must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    if len(text) > settings.max_text_chars:
        reason = f"text is longer than {settings.max_text_chars} characters"
        raise RefusedMo(sender, receiver.strip(), TOO_LONG_KEY, reason)
    return IncomingSms(NAME, sender, receiver.strip(), text, message_id)


def reply(text: SmsText | None) -> tuple[bytes, dict[str, str]]:
    """Body and headers of the answer to smsbox: the MT text, or nothing at all."""
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if text is None:
        return b"", headers
    if text.segments.encoding == "ucs2":
        headers["X-Kannel-Coding"] = "2"
    return text.text.encode("utf-8"), headers


def sendsms_params(
    *,
    settings: SmsSettings,
    to: str,
    segments: Segments,
    ref: int,
    report_url: str | None,
) -> dict[str, str]:
    """The query of one `sendsms` call for outbox row `ref`."""
    params = {
        "username": settings.kannel_username or "",
        "password": settings.kannel_password.get_secret_value() if settings.kannel_password else "",
        "from": settings.source_address,
        "to": to,
        "text": segments.text,
        "charset": "UTF-8",
        "coding": "2" if segments.encoding == "ucs2" else "0",
    }
    if settings.kannel_smsc:
        params["smsc"] = settings.kannel_smsc
    if report_url:
        params["dlr-mask"] = str(DLR_MASK)
        params["dlr-url"] = f"{report_url}?{urlencode({'ref': ref})}&status=%d&smsc_ref=%F"
    return params


def sendsms_outcome(status: int, body: str) -> SendOutcome:
    """Judge smsbox's answer: 202 `0: Accepted…`/`3: Queued…` is accepted; 503 and 5xx
    (smsbox or bearerbox overloaded, going down) are retried; 4xx are permanent."""
    first = body.strip().splitlines()[0][:80] if body.strip() else ""
    if status in (200, 202):
        return SendOutcome("accepted", first)
    if status >= 500 or status in (408, 429):
        return SendOutcome("retry", f"HTTP {status} {first}".strip())
    return SendOutcome("permanent", f"HTTP {status} {first}".strip())


def parse_report(query: str) -> DeliveryReport:
    """A delivery report call (`/sms/kannel/dlr?ref=…&status=%d&smsc_ref=%F`)."""
    fields = _fields(query)
    ref_text, status_text = fields.get("ref", ""), fields.get("status", "")
    if not ref_text.isdigit() or len(ref_text) > 18:
        raise BadGatewayRequest("ref must be an outbox id")
    if not status_text.isdigit() or int(status_text) not in _DLR_STATES:
        raise BadGatewayRequest("status must be one of 1, 2, 4, 8, 16")
    smsc_ref = fields.get("smsc_ref", "")[:64]
    return DeliveryReport(int(ref_text), _DLR_STATES[int(status_text)], smsc_ref)
