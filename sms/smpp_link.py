"""The SMPP session as part of the app (`sms.transport: smpp`).

`smpp_ctx` (a cleanup context) binds the ESME (`sms.dialects.smpp.SmppTransport`) for
the app's lifetime; the outbox sender (`sms.sender.sender_ctx`) delivers through the
same session. Each inbound `deliver_sm` (already answered with `deliver_sm_resp` by the
library, whatever happens here) is either

- a **delivery receipt**: recorded on its outbox row (found by the SMSC's message id),
- or an **MO**: answered by the same conversation code as Kannel's (`sms.conversation`),
  the reply submitted back to the sender from the number it wrote to. A part of a long
  MO (UDH or `sar_*` TLVs) is kept until the rest arrive (`sms.concat`); an MO hotline
  cannot read (unknown coding, a broken header) or too long gets a polite SMS; 8-bit
  data (a machine's) gets nothing.

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
from sms.concat import PARTS, open_reassembly, part_of, parts_key
from sms.conversation import SERVICE_NUMBERS, IncomingSms, RefusedMo, refusal
from sms.dedupe import reply_once
from sms.dialects import smpp
from sms.render import TOO_LONG_KEY, UNREADABLE_KEY, SmsLayout, SmsText

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
    """Record a receipt on its message (a part's on its part: a long message is
    delivered when all its parts are, `Outbox.record_receipt`)."""
    outbox = app[MESSAGES]
    for wait in (0.0, *RECEIPT_WAITS):
        if wait:
            await asyncio.sleep(wait)
        if await outbox.record_receipt(receipt.smsc_ref, receipt.state) is not None:
            return True
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
    sender = event.source_addr
    if not sender:
        log.warning("smpp: MO without a source_addr: nobody to answer; dropped")
        return
    receiver = event.destination_addr or settings.source_address
    if not app[SERVICE_NUMBERS].serves(receiver):
        log.warning(
            "smpp: MO from subscriber %s to a number not served here (sms.service_numbers); "
            "acknowledged, not answered",
            app[PSEUDONYM](sender),
        )
        return
    message_id = smpp.mo_reference(event.tlvs)
    try:
        udh, body = smpp.split_udh(event.short_message, event.esm_class)
        part = part_of(udh, smpp.tlv_map(event.tlvs))
        smpp.text_coding(event.data_coding)
        if part is not None:  # one part of a long message: joined before it is routed
            key = parts_key(app[SETTINGS].env, app[PSEUDONYM](sender), receiver, part)
            whole = await app[PARTS].add(key, part, body)
            if whole is None:
                return  # more parts to come
            body, message_id = whole, message_id or part.message_id
        text = smpp.decode_text(body, event.data_coding, 0)
    except smpp.BinaryMessage as exc:
        log.info("smpp: MO from subscriber %s not answered (%s)", app[PSEUDONYM](sender), exc)
        return
    except ValueError as exc:  # the subscriber is told we could not read it
        await _reply(app, sender, receiver, RefusedMo(sender, receiver, UNREADABLE_KEY, str(exc)))
        return
    if len(text) > settings.max_text_chars:
        reason = f"text is longer than {settings.max_text_chars} characters"
        await _reply(app, sender, receiver, RefusedMo(sender, receiver, TOO_LONG_KEY, reason))
        return
    incoming = IncomingSms(
        dialect=smpp.NAME,
        sender=sender,
        receiver=receiver,
        text=text,
        message_id=message_id,
    )
    await _reply(app, sender, receiver, await reply_once(app, incoming, _layout(app)))


async def _reply(
    app: web.Application, to: str, source: str, reply: SmsText | RefusedMo | None
) -> None:
    """Submit the answer to an MO (a refusal worded first); None: nothing to send."""
    if isinstance(reply, RefusedMo):
        reply = await refusal(app, reply, _layout(app))
    if reply is None:
        return  # a redelivery
    outcome = await app[SMPP_TRANSPORT].send(to, reply.segments, source=source, receipt=False)
    if outcome.result != "accepted":
        log.warning(
            "smpp: reply to subscriber %s not taken (%s)", app[PSEUDONYM](to), outcome.reason
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
    app[PARTS] = open_reassembly(app[SETTINGS].redis_url)
    app[SMPP_LINK] = transport  # the USSD channel may share the bind (ussd_smpp)
    transport.start()
    yield
    await transport.close()
    await app[PARTS].close()
