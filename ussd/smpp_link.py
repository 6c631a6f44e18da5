"""USSD over SMPP: hotline as an ESME of the operator's USSD gateway (`ussd_smpp`).

The bind is `hotline.links.smpp.SmppLink` (the same session machinery as the SMS
channel's SMSC bind: reconnect with backoff, `enquire_link` checks), on its own system
id — or, with `share_sms_bind`, the SMS channel's bind itself, whose `deliver_sm`s
carrying `ussd_service_op` are diverted here. Each `deliver_sm` carrying `ussd_service_op` is read by the configured vendor
profile (`ussd.smpp_profiles`) and takes the same turn as an HTTP request — the same
flows, entries, pagination (`98`, `0`, `00`) and navigation — laid out within this
bearer's budget (`ussd_smpp.gsm7_limit` / `ucs2_limit`: no `CON `/`END ` to reserve);
the screen goes back as a `submit_sm` with the profile's op code and session TLV:

- a dial opens the dialogue (the dialled string is the entry: `*100*1#` lands on the
  balance directly); the dialogue remembers its entry for the answers that follow,
  which carry only the subscriber's keys;
- an ending screen goes out with the profile's closing op (PSSR response 17 / 6D 0x17)
  and forgets the dialogue;
- a subscriber's abort ends the session with no answer (nothing is sent);
- an op code or `its_session_info` the profile cannot place, or an answer for a
  dialogue we do not know, is logged and answered on the profile's closing op with the
  apology sentence — never a crash; a `deliver_sm` without `ussd_service_op` is no
  USSD and is only logged.

The dialogue → entry memory is this worker's (an LRU with the session's TTL): one bind
per worker, and the gateway keeps a dialogue on the bind that opened it — as USSD
gateways do, a dialogue being one TCP-level transaction stream. Session ids in the
store hold the subscriber's pseudonym, never the number.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import smpp34
from aiohttp import web
from cachetools import TTLCache

from hotline.base.config import UssdSmppSettings
from hotline.flow.events import ChannelEvent, EventKind
from hotline.i18n.gsm7 import gsm7_octets, gsm7_text, is_gsm7
from hotline.links.smpp import SMPP_LINK, SmppLink
from hotline.web.keys import ENGINE, PSEUDONYM, SETTINGS
from hotline.web.turns import take_turn
from ussd.bearer import BearerLayout
from ussd.budget import Limits
from ussd.smpp_profiles import (
    TLV_ITS_SESSION_INFO,
    TLV_USSD_SERVICE_OP,
    Incoming,
    Profile,
    profile_named,
)

__all__ = ["USSD_SMPP", "UssdSmppLink", "decode_text", "encode_text", "is_ussd", "setup"]

log = logging.getLogger(__name__)

CHANNEL = "ussd"
DIALECT = "smpp"
MAX_DIALOGUES = 100_000


def decode_text(short_message: bytes, data_coding: int) -> str:
    """The dialled string or answer: UCS-2 for `data_coding` 8, Latin-1 for 3, the
    GSM 03.38 default alphabet (unpacked, one septet an octet) otherwise."""
    coding = data_coding & 0x0F if data_coding & 0xF0 == 0xF0 else data_coding
    if coding == 8:
        return short_message.decode("utf-16-be", "replace")
    if coding == 3:
        return short_message.decode("latin-1")
    return gsm7_text(short_message)


def encode_text(text: str) -> tuple[bytes, int]:
    """A screen's octets and `data_coding`: GSM 03.38 (0) when every character is in
    the default alphabet, else UCS-2 (8) — one Chinese character switches the screen."""
    if is_gsm7(text):
        return gsm7_octets(text), 0
    return text.encode("utf-16-be", "surrogatepass"), 8


class UssdSmppLink:
    """The USSD gateway bind and the dialogues on it."""

    def __init__(self, app: web.Application, settings: UssdSmppSettings) -> None:
        self.app = app
        self.settings = settings
        self.profile: Profile = profile_named(settings.profile, settings.abort_op)
        #: Our own bind, or (share_sms_bind) the SMS channel's, found at startup.
        self.link: SmppLink | None = None
        self.owns_link = settings.link is not None
        if settings.link is not None:
            self.link = SmppLink(settings.link, self.on_deliver, name="ussd-smpp")
        ttl = app[SETTINGS].ussd.session_ttl
        self.entries: TTLCache[str, str] = TTLCache(maxsize=MAX_DIALOGUES, ttl=ttl)
        #: This bearer's layout (its own budget: no `CON `/`END ` to reserve).
        self.layout = BearerLayout(app, Limits(settings.gsm7_limit, settings.ucs2_limit))

    @property
    def _submit_timeout(self) -> float:
        link = self.link
        return link.smpp.submit_timeout if link is not None else 10.0

    async def on_deliver(self, pdu: smpp34.DeliverSmEvent) -> None:
        """One `deliver_sm` from the gateway (already acknowledged by the library)."""
        tlvs = {tlv.tag: bytes(tlv.value) for tlv in pdu.tlvs}
        raw_op = tlvs.get(TLV_USSD_SERVICE_OP)
        if raw_op is None:
            log.warning("ussd-smpp: a deliver_sm without ussd_service_op ignored (no USSD)")
            return
        if not pdu.source_addr:
            log.warning("ussd-smpp: a deliver_sm without source_addr ignored")
            return
        op = raw_op[0] if len(raw_op) == 1 else None
        incoming = self.profile.read(op, tlvs.get(TLV_ITS_SESSION_INFO))
        pseudonym = self.app[PSEUDONYM](pdu.source_addr)
        key = f"{self.profile.name}:{pseudonym}:{incoming.dialog or ''}"
        if incoming.kind == "unknown":
            log.warning("ussd-smpp: %s (subscriber %s); closed", incoming.reason, pseudonym)
            await self._apologise(pdu, incoming)
            return
        if incoming.kind == "abort":
            entry = self.entries.pop(key, None)
            if entry is not None:  # the session ends; the subscriber has gone, nothing is sent
                await take_turn(
                    self.app, self._event(pdu, key, "hangup", entry), self.layout.lay_out
                )
            return
        text = decode_text(pdu.short_message, pdu.data_coding)
        if incoming.kind == "start":
            entry = text.strip()
            self.entries[key] = entry
            event = self._event(pdu, key, "start", entry)
        else:
            known = self.entries.get(key)
            if known is None:
                log.warning(
                    "ussd-smpp: an answer for a dialogue we do not know (subscriber %s); closed",
                    pseudonym,
                )
                await self._apologise(pdu, incoming)
                return
            event = self._event(pdu, key, "input", known, text.strip())
        _, page = await take_turn(self.app, event, self.layout.lay_out)
        if page.ends:
            self.entries.pop(key, None)
        await self._send(pdu, incoming, page.text, page.ends)

    def _event(
        self, pdu: smpp34.DeliverSmEvent, key: str, kind: EventKind, entry: str, text: str = ""
    ) -> ChannelEvent:
        return ChannelEvent(
            channel=CHANNEL,
            dialect=DIALECT,
            session_id=key,
            subscriber=pdu.source_addr,
            kind=kind,
            text=text,
            entry=entry,
        )

    async def _apologise(self, pdu: smpp34.DeliverSmEvent, incoming: Incoming) -> None:
        page = self.layout.lay_out(self.app[ENGINE].apology())
        await self._send(pdu, incoming, page.text, True)

    async def _send(
        self, pdu: smpp34.DeliverSmEvent, incoming: Incoming, text: str, ends: bool
    ) -> None:
        op, info = self.profile.answer(incoming, ends)
        tlvs = [smpp34.Tlv(TLV_USSD_SERVICE_OP, bytes((op,)))]
        if info is not None:
            tlvs.append(smpp34.Tlv(TLV_ITS_SESSION_INFO, info))
        body, coding = encode_text(text)
        smsc = self.link.smsc if self.link is not None else None
        if smsc is None:
            log.warning("ussd-smpp: not bound; a screen was not sent")
            return
        try:
            async with asyncio.timeout(self._submit_timeout):
                resp = await smsc.submit_sm(
                    pdu.source_addr,
                    body,
                    source_addr=pdu.destination_addr or self.settings.source_address,
                    service_type=self.settings.service_type,
                    dest_addr_ton=pdu.source_addr_ton,
                    dest_addr_npi=pdu.source_addr_npi,
                    data_coding=coding,
                    tlvs=tlvs,
                )
        except TimeoutError:
            log.warning("ussd-smpp: submit_sm_resp timed out; the screen may be lost")
            return
        except smpp34.SmppError:
            if self.link is not None:
                self.link.reset()
            log.warning("ussd-smpp: generic_nack or session lost; binding again")
            return
        except Exception as exc:
            log.warning("ussd-smpp: submit failed (%s)", type(exc).__name__)
            return
        if resp.command_status != 0:
            log.warning("ussd-smpp: the gateway refused a screen (0x%08X)", resp.command_status)


USSD_SMPP = web.AppKey("USSD_SMPP", UssdSmppLink)


async def _ussd_smpp_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].ussd_smpp
    if settings is None:
        yield
        return
    ussd = UssdSmppLink(app, settings)
    app[USSD_SMPP] = ussd
    if ussd.link is not None:
        ussd.link.start()
    yield
    if ussd.link is not None and ussd.owns_link:
        await ussd.link.close()


async def _share_sms_bind(app: web.Application) -> None:
    """On startup (after every cleanup context): take the dialogue steps off the SMS
    channel's SMSC bind (`ussd_smpp.share_sms_bind`)."""
    ussd = app.get(USSD_SMPP)
    if ussd is None or ussd.owns_link:
        return
    shared = app.get(SMPP_LINK)
    if shared is None:
        raise RuntimeError("ussd_smpp.share_sms_bind: the SMS channel has no SMPP bind")
    ussd.link = shared
    shared.divert(is_ussd, ussd.on_deliver)


def is_ussd(pdu: smpp34.DeliverSmEvent) -> bool:
    """A dialogue step of a USSD gateway: it carries `ussd_service_op`."""
    return any(tlv.tag == TLV_USSD_SERVICE_OP for tlv in pdu.tlvs)


def setup(app: web.Application) -> None:
    """Bind to the USSD gateway for the app's lifetime when `ussd_smpp` is configured
    (a cleanup context: it runs after the engine's)."""
    app.cleanup_ctx.append(_ussd_smpp_ctx)
    app.on_startup.append(_share_sms_bind)
