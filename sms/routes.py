"""aiohttp routes of the SMS channel: smsbox's `get-url`/`post-url` and delivery reports.

`GET|POST /sms/kannel` (`sms-kannel`): parse → answer → reply. A malformed call gets
HTTP 400 with the reason; a message the subscriber made unreadable (too long) gets a
polite SMS; trouble on our side gets the apology SMS, never a 500.
`GET /sms/kannel/dlr` (`sms-kannel-dlr`): a delivery report for an outbox row.
The MO ledger (`sms.dedupe.ledger_ctx`: one answer per gateway message id), the SMPP
session (`sms.smpp_link.smpp_ctx`, when `sms.transport` is smpp) and the outbox's
sender (`sms.sender.sender_ctx`) run as cleanup contexts, in that order.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from hotline.base.errors import BadGatewayRequest
from hotline.web.forms import read_body
from hotline.web.guards import polite_sentence
from hotline.web.keys import ENGINE, MESSAGES, SETTINGS
from sms.conversation import SERVICE_NUMBERS, RefusedMo, ServiceNumbers, refusal
from sms.dedupe import ledger_ctx, reply_once
from sms.dialects import WireRequest, kannel
from sms.metrics import outbox_metrics_ctx
from sms.render import SmsLayout, SmsText
from sms.segments import segment
from sms.sender import sender_ctx
from sms.smpp_link import smpp_ctx

__all__ = ["SMS_LAYOUT", "polite_reply", "setup"]

log = logging.getLogger(__name__)

SMS_LAYOUT = web.AppKey("SMS_LAYOUT", SmsLayout)
REPORT_WAITS = (0.05, 0.1, 0.2, 0.5, 1.0)  # seconds between looks while a row is `sending`


def setup(app: web.Application) -> None:
    app[SERVICE_NUMBERS] = ServiceNumbers.from_settings(app[SETTINGS].sms)
    app.on_startup.append(_build_layout)
    app.router.add_route("GET", "/sms/kannel", _kannel, name="sms-kannel")
    app.router.add_route("POST", "/sms/kannel", _kannel)
    app.router.add_get(kannel.REPORT_PATH, _kannel_report, name="sms-kannel-dlr")
    app.cleanup_ctx.append(outbox_metrics_ctx)
    app.cleanup_ctx.append(ledger_ctx)  # before the SMPP session, whose MOs use it
    app.cleanup_ctx.append(smpp_ctx)  # before the sender, which may deliver through it
    app.cleanup_ctx.append(sender_ctx)


async def _build_layout(app: web.Application) -> None:
    app[SMS_LAYOUT] = SmsLayout.from_settings(app[ENGINE].catalogs, app[SETTINGS].sms)


async def _wire(request: web.Request) -> WireRequest:
    body = await read_body(request) if request.method == "POST" else b""
    return WireRequest(request.method, request.rel_url.raw_query_string, request.headers, body)


async def _kannel(request: web.Request) -> web.Response:
    app = request.app
    try:
        incoming = kannel.parse(await _wire(request), app[SETTINGS].sms, app[SERVICE_NUMBERS])
    except BadGatewayRequest as exc:
        return web.Response(status=exc.status_hint, text=exc.reason)
    except RefusedMo as refused:  # the subscriber's doing: told by SMS, not Kannel by a 400
        body, headers = kannel.reply(await refusal(app, refused, app[SMS_LAYOUT]))
        return web.Response(body=body, headers=headers)
    # smsbox gives up on a slow answer and calls again: a reply it never read goes to
    # the retry (sms.dedupe), not to nobody.
    text = await reply_once(app, incoming, app[SMS_LAYOUT], lambda: _gone(request))
    body, headers = kannel.reply(text)
    return web.Response(body=body, headers=headers)


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _kannel_report(request: web.Request) -> web.Response:
    try:
        report = kannel.parse_report(request.rel_url.raw_query_string)
    except BadGatewayRequest as exc:
        return web.Response(status=exc.status_hint, text=exc.reason)
    outbox = request.app[MESSAGES]
    # A report can overtake the sender's record of the message as sent (which keeps
    # the parts its reports fill in): give the sender a moment.
    for wait in REPORT_WAITS:
        if await outbox.state_of(report.ref) != "sending":
            break
        await asyncio.sleep(wait)
    known = await outbox.record_report(report.ref, report.state, report.smsc_ref)
    return web.Response(status=200 if known else 404, text="ok" if known else "unknown ref")


async def polite_reply(request: web.Request, reason: str) -> web.StreamResponse:
    """A guard's answer as an SMS the gateway sends (rate limited, busy)."""
    _, sentence = polite_sentence(request.app, reason)
    body, headers = kannel.reply(_as_text(sentence, request.app[SETTINGS].sms.signature))
    return web.Response(body=body, headers=headers)


def _as_text(sentence: str, signature: str) -> SmsText:
    text = sentence + signature
    return SmsText(text, segment(text))
