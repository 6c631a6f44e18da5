"""SMPP 3.4: hotline as an ESME bound to the SMSC (`sms.transport: smpp`).

The wire (framing, sequence numbers, `enquire_link` timers, `generic_nack`, the
automatic `deliver_sm_resp`) is the `smpp34` library's Rust core; this module is
hotline's side of it:

- pure helpers: the GSM 03.38 octets of a text (`data_coding` 0, one septet per octet,
  unpacked as SMPP carries it), the concatenation UDH (8-bit reference, unique per
  destination), the `submit_sm_resp` status judged as accepted / retry later
  (`ESME_RTHROTTLED` 0x58, `ESME_RMSGQFUL` 0x14, …) / permanent, an MO's text decoded
  from its `data_coding`, a delivery receipt read from its `id:… stat:…` text or its
  `receipted_message_id` (0x001E) / `message_state` (0x0427) TLVs;
- `SmppTransport`: the outbox's sender over one `bind_transceiver` session — the
  session itself (bind, reconnect with backoff, `enquire_link` checks, each inbound
  `deliver_sm` handed to `on_deliver`) is `hotline.links.smpp.SmppLink`, shared with the
  USSD channel's bind — and a bounded window of outstanding `submit_sm`.

The password is never logged; neither is a number or a text (rows by outbox id).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from dataclasses import dataclass
from typing import Literal

import smpp34
from cachetools import LRUCache

from hotline.base.config import SmsSettings
from hotline.i18n.gsm7 import gsm7_octets, gsm7_text
from hotline.links.smpp import DeliverHandler, SmppLink
from hotline.store.outbox import OutboxRow
from sms.dialects.base import SendOutcome
from sms.segments import Segments

__all__ = [
    "NAME",
    "BinaryMessage",
    "Receipt",
    "SmppTransport",
    "concat_udh",
    "decode_text",
    "encode_part",
    "gsm7_octets",
    "mo_reference",
    "parse_receipt",
    "split_udh",
    "submit_outcome",
    "text_coding",
    "tlv_map",
]

log = logging.getLogger(__name__)

NAME = "smpp"

ESME_ROK = 0x00
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
#: Transient refusals: try again later. Everything else non-zero is permanent.
RETRY_STATUSES = frozenset(
    {
        ESME_RMSGQFUL,
        ESME_RTHROTTLED,
        0x08,  # ESME_RSYSERR
        0x45,  # ESME_RSUBMITFAIL
        0x64,  # ESME_RX_T_APPN: temporary application error
        0xFE,  # ESME_RDELIVERYFAILURE (transient at some SMSCs)
    }
)

TLV_USER_MESSAGE_REFERENCE = 0x0204
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
ESM_UDHI = 0x40
ESM_RECEIPT_MASK = 0x3C  # bits 2-5: message type
ESM_RECEIPT = 0x04  # SMSC delivery receipt
REGISTERED_DELIVERY = 0x01  # a receipt on final success or failure

#: SMPP `message_state` values (§5.2.28) and the `stat:` words of receipts (Appendix B).
_STATES: dict[int, Literal["delivered", "failed", "accepted", "buffered"]] = {
    1: "buffered",  # ENROUTE
    2: "delivered",  # DELIVERED
    3: "failed",  # EXPIRED
    4: "failed",  # DELETED
    5: "failed",  # UNDELIVERABLE
    6: "accepted",  # ACCEPTED
    7: "failed",  # UNKNOWN
    8: "failed",  # REJECTED
}
_STAT_WORDS: dict[str, Literal["delivered", "failed", "accepted", "buffered"]] = {
    "ENROUTE": "buffered",
    "DELIVRD": "delivered",
    "EXPIRED": "failed",
    "DELETED": "failed",
    "UNDELIV": "failed",
    "ACCEPTD": "accepted",
    "UNKNOWN": "failed",
    "REJECTD": "failed",
}
_STATUS = re.compile(r"\(0x([0-9A-Fa-f]{8})\)")
_RECEIPT_ID = re.compile(rb"\bid:([^\s]{1,64})", re.IGNORECASE)
_RECEIPT_STAT = re.compile(rb"\bstat:([A-Za-z]{7})", re.IGNORECASE)


def encode_part(part: str, data_coding: int) -> bytes:
    """A part's `short_message` octets: GSM 03.38 for 0, UTF-16BE for 8 (UCS-2)."""
    if data_coding == 0:
        return gsm7_octets(part)
    return part.encode("utf-16-be", "surrogatepass")


def concat_udh(reference: int, total: int, number: int) -> bytes:
    """The 6-octet concatenation UDH: UDHL 5, IEI 0x00 (8-bit reference), IEDL 3."""
    return bytes((0x05, 0x00, 0x03, reference & 0xFF, total, number))


class BinaryMessage(ValueError):
    """An MO of 8-bit data (`data_coding` 2 or 4, or class F with the 8-bit bit): written
    by a machine (a SIM toolkit, a WAP push), not a person; not answered."""


def split_udh(short_message: bytes, esm_class: int) -> tuple[bytes, bytes]:
    """(UDH, body) of a `short_message`; the UDH is empty unless UDHI is set.
    `ValueError` when the header claims more octets than there are."""
    if not esm_class & ESM_UDHI:
        return b"", short_message
    if not short_message or 1 + short_message[0] > len(short_message):
        raise ValueError("broken user data header")
    end = 1 + short_message[0]
    return short_message[:end], short_message[end:]


def decode_text(short_message: bytes, data_coding: int, esm_class: int) -> str:
    """An MO's text from its octets (a UDH, when UDHI is set, skipped).

    `BinaryMessage` for 8-bit data; `ValueError` (with a reason fit for a log) for a
    broken header, an unknown `data_coding` or octets that are not text in it."""
    _, body = split_udh(short_message, esm_class)
    coding = text_coding(data_coding)
    try:
        if coding == 8:
            return body.decode("utf-16-be")
        if coding == 3:
            return body.decode("latin-1")
        if coding == 1:
            return body.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"octets are not text in data_coding {coding}") from None
    if any(octet > 0x7F for octet in body):
        raise ValueError("octets are not GSM 03.38 septets")
    return gsm7_text(body)


def text_coding(data_coding: int) -> int:
    """The text coding an MO's `data_coding` names: 0 GSM, 1 ASCII, 3 Latin-1, 8 UCS-2.
    `BinaryMessage` for 8-bit data, `ValueError` for a coding hotline does not read."""
    if data_coding & 0xF0 == 0xF0:  # message class: bit 2 says 8-bit data, else GSM
        if data_coding & 0x04:
            raise BinaryMessage("8-bit data (message class)")
        return 0
    if data_coding in (2, 4):
        raise BinaryMessage(f"8-bit data (data_coding {data_coding})")
    if data_coding not in (0, 1, 3, 8):
        raise ValueError(f"unknown data_coding 0x{data_coding:02X}")
    return data_coding


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt: the SMSC's message id and the state it reports."""

    smsc_ref: str
    state: Literal["delivered", "failed", "accepted", "buffered"]


def tlv_map(tlvs: list[smpp34.Tlv]) -> dict[int, bytes]:
    """The TLVs of a PDU by tag (the first of each)."""
    found: dict[int, bytes] = {}
    for tlv in tlvs:
        found.setdefault(tlv.tag, bytes(tlv.value))
    return found


def _tlv(tlvs: list[smpp34.Tlv], tag: int) -> bytes | None:
    for tlv in tlvs:
        if tlv.tag == tag:
            return bytes(tlv.value)
    return None


def parse_receipt(short_message: bytes, esm_class: int, tlvs: list[smpp34.Tlv]) -> Receipt | None:
    """A delivery receipt, or None when the `deliver_sm` is an MO. TLVs win over the
    text (`receipted_message_id` 0x001E, `message_state` 0x0427)."""
    ref_tlv = _tlv(tlvs, TLV_RECEIPTED_MESSAGE_ID)
    state_tlv = _tlv(tlvs, TLV_MESSAGE_STATE)
    if esm_class & ESM_RECEIPT_MASK != ESM_RECEIPT and ref_tlv is None:
        return None
    ref = ref_tlv.rstrip(b"\x00").decode("ascii", "replace") if ref_tlv else ""
    if not ref and (match := _RECEIPT_ID.search(short_message)):
        ref = match.group(1).decode("ascii", "replace")
    state: Literal["delivered", "failed", "accepted", "buffered"] | None = None
    if state_tlv:
        state = _STATES.get(state_tlv[0])
    if state is None and (stat := _RECEIPT_STAT.search(short_message)):
        state = _STAT_WORDS.get(stat.group(1).decode("ascii").upper())
    if not ref or state is None:
        return None
    return Receipt(ref, state)


def mo_reference(tlvs: list[smpp34.Tlv]) -> str | None:
    """An MO's id for the conversation's duplicate check: its `user_message_reference`
    TLV (0x0204) when the SMSC sends one (a redelivery carries the same); else None.
    (`smpp34` does not expose the PDU's sequence number.)"""
    value = _tlv(tlvs, TLV_USER_MESSAGE_REFERENCE)
    if value is None or not value:
        return None
    return "umr:" + value.hex()


def submit_outcome(status: int, message_id: str | None) -> SendOutcome:
    """How a `submit_sm_resp` status reads for the outbox."""
    if status == ESME_ROK:
        return SendOutcome("accepted", smsc_ref=message_id or "")
    reason = f"submit_sm_resp 0x{status:08X}"
    if status in RETRY_STATUSES:
        return SendOutcome("retry", reason)
    return SendOutcome("permanent", reason)


class SmppTransport(SmppLink):
    """The outbox sender's transport over one SMPP transceiver session.

    `start()` runs the session task; `submit` waits (up to `submit_timeout`) for a bound
    session, else answers "retry". Inbound `deliver_sm` (MOs, receipts) go to
    `on_deliver` in their own tasks, at most twice `window` at a time; the library has
    already sent the `deliver_sm_resp`.
    """

    def __init__(self, settings: SmsSettings, on_deliver: DeliverHandler | None = None) -> None:
        if settings.smpp is None:
            raise ValueError("sms.smpp is needed for transport: smpp")
        super().__init__(settings.smpp, on_deliver)
        self.settings = settings
        self._window = asyncio.Semaphore(settings.smpp.window)
        self._refs: LRUCache[str, int] = LRUCache(maxsize=65536)

    # -- sending --------------------------------------------------------------------

    def _reference(self, destination: str) -> int:
        """The next 8-bit concatenation reference for `destination`."""
        ref = self._refs.get(destination)
        ref = random.randrange(256) if ref is None else (ref + 1) % 256
        self._refs[destination] = ref
        return ref

    async def send(
        self,
        to: str,
        segments: Segments,
        *,
        source: str | None = None,
        receipt: bool = True,
    ) -> SendOutcome:
        """Submit every part of one message; the first part's message id is its ref.

        A refusal of the first part is the message's outcome; a refusal of a later
        part fails the message (resending would duplicate the parts already out).
        """
        if not self.bound and not await self.wait_bound(self.smpp.submit_timeout):
            return SendOutcome("retry", "smpp: not bound")
        coding = segments.data_coding
        total = segments.count
        reference = self._reference(to) if total > 1 else 0
        first_ref = ""
        refs: list[str] = []
        for number, part in enumerate(segments.parts, start=1):
            body = encode_part(part, coding)
            esm_class = 0
            if total > 1:
                body = concat_udh(reference, total, number) + body
                esm_class = ESM_UDHI
            outcome = await self._submit_one(
                to, body, coding, esm_class, source or self.settings.source_address, receipt
            )
            if outcome.result != "accepted":
                if number == 1:
                    return outcome
                return SendOutcome(
                    "permanent", f"part {number}/{total} refused after earlier parts went out"
                )
            if number == 1:
                first_ref = outcome.smsc_ref
            refs.append(outcome.smsc_ref)
        return SendOutcome("accepted", smsc_ref=first_ref, parts=tuple(refs))

    async def _submit_one(
        self, to: str, body: bytes, coding: int, esm_class: int, source: str, receipt: bool
    ) -> SendOutcome:
        async with self._window:
            smsc = self.smsc
            if smsc is None:
                return SendOutcome("retry", "smpp: not bound")
            try:
                async with asyncio.timeout(self.smpp.submit_timeout):
                    resp = await smsc.submit_sm(
                        to,
                        body,
                        source_addr=source,
                        source_addr_ton=5 if not source.lstrip("+").isdigit() else 0,
                        esm_class=esm_class,
                        data_coding=coding,
                        registered_delivery=REGISTERED_DELIVERY if receipt else 0,
                    )
            except TimeoutError:
                return SendOutcome("retry", "smpp: submit_sm_resp timed out")
            except smpp34.SmppError as exc:
                # Not a submit_sm_resp (those come back with their status): a
                # generic_nack, or the session gone. Never taken: bind again, retry.
                self.reset()
                status = _STATUS.search(str(exc))
                code = f" 0x{status.group(1)}" if status else ""
                return SendOutcome("retry", f"smpp: generic_nack or session lost{code}")
            except Exception as exc:  # the session went away under us
                return SendOutcome("retry", f"smpp: {type(exc).__name__}")
        return submit_outcome(resp.command_status, resp.message_id)

    async def submit(self, row: OutboxRow, segments: Segments) -> SendOutcome:
        return await self.send(row.subscriber, segments)
