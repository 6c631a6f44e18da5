"""The SMPP session as part of the app (`sms.transport: smpp`).

`smpp_ctx` (a cleanup context) binds the ESME (`sms.dialects.smpp.SmppTransport`) for
the app's lifetime; the outbox sender (`sms.sender.sender_ctx`) delivers through the
same session. Each inbound `deliver_sm` (already answered with `deliver_sm_resp` by the
library, whatever happens here) is either

- a **delivery receipt**: recorded on its outbox row (found by the SMSC's message id),
- or an **MO**: answered by the same conversation code as Kannel's (`sms.conversation`),
  the reply submitted back to the sender from the number it wrote to.

Nothing here logs a number or a text; subscribers by pseudonym only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import smpp34
from aiohttp import web

from hotline.links.smpp import SMPP_LINK
from hotline.web.keys import ENGINE, MESSAGES, PSEUDONYM, SETTINGS
from sms.conversation import IncomingSms, answer_or_apology
from sms.dialects import smpp
from sms.render import SmsLayout

__all__ = ["SMPP_TRANSPORT", "handle_deliver", "smpp_ctx"]

log = logging.getLogger(__name__)

SMPP_TRANSPORT = web.AppKey("SMPP_TRANSPORT", smpp.SmppTransport)
RECEIPT_WAITS = (0.2, 0.5, 1.0, 2.0, 4.0)  # a receipt can overtake `Outbox.sent`: look again


def _layout(app: web.Application) -> SmsLayout:
    from sms.routes import SMS_LAYOUT

    layout = app.get(SMS_LAYOUT)
    if layout is None:
        layout = SmsLayout.from_settings(app[ENGINE].catalogs, app[SETTINGS].sms)
    return layout


async def _record_receipt(app: web.Application, receipt: smpp.Receipt) -> bool:
    transport = app[SMPP_TRANSPORT]
    outbox = app[MESSAGES]
    for wait in (0.0, *RECEIPT_WAITS):
        if wait:
            await asyncio.sleep(wait)
        # A row is named by its first part's id; a later part's receipt keeps it.
        row, first = transport.submitted.get(receipt.smsc_ref, (None, receipt.smsc_ref))
        if row is None:
            row = await outbox.find_smsc_ref(receipt.smsc_ref)
        if row is not None:
            return await outbox.record_report(row, receipt.state, first)
    log.info("smpp: receipt for an unknown message id (%s)", receipt.state)
    return False


async def handle_deliver(app: web.Application, event: smpp34.DeliverSmEvent) -> None:
    """One inbound `deliver_sm`: a receipt recorded, or an MO answered."""
    receipt = smpp.parse_receipt(event.short_message, event.esm_class, event.tlvs)
    if receipt is not None:
        await _record_receipt(app, receipt)
        return
    if event.esm_class & smpp.ESM_RECEIPT_MASK:
        return  # another kind of SMSC notification: acknowledged, nothing to do
    settings = app[SETTINGS].sms
    text = smpp.decode_text(event.short_message, event.data_coding, event.esm_class)
    if not event.source_addr or len(text) > settings.max_text_chars:
        log.warning("smpp: MO dropped (no sender or too long)")
        return
    incoming = IncomingSms(
        dialect=smpp.NAME,
        sender=event.source_addr,
        receiver=event.destination_addr or settings.source_address,
        text=text,
        message_id=smpp.mo_reference(event.tlvs),
    )
    reply = await answer_or_apology(app, incoming, _layout(app))
    if reply is None:
        return
    outcome = await app[SMPP_TRANSPORT].send(
        incoming.sender, reply.segments, source=incoming.receiver, receipt=False
    )
    if outcome.result != "accepted":
        log.warning(
            "smpp: reply to subscriber %s not taken (%s)",
            app[PSEUDONYM](incoming.sender),
            outcome.reason,
        )


async def smpp_ctx(app: web.Application) -> AsyncIterator[None]:
    """Bind the SMPP session for the app's lifetime when `sms.transport` is smpp."""
    settings = app[SETTINGS].sms
    if settings.transport != "smpp":
        yield
        return

    async def on_deliver(event: smpp34.DeliverSmEvent) -> None:
        await handle_deliver(app, event)

    transport = smpp.SmppTransport(settings, on_deliver)
    app[SMPP_TRANSPORT] = transport
    app[SMPP_LINK] = transport  # the USSD channel may share the bind (ussd_smpp)
    transport.start()
    yield
    await transport.close()
