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
- `SmppTransport`: one `bind_transceiver` session kept up by a task — reconnects with
  jittered exponential backoff when the session drops (a `generic_nack` or an unbind
  ends it too), checks it is alive every `enquire_link` seconds — a bounded window of
  outstanding `submit_sm`, and each inbound `deliver_sm` handed to `on_deliver`.

The password is never logged; neither is a number or a text (rows by outbox id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import smpp34
from cachetools import LRUCache

from hotline.base.config import SmppSettings, SmsSettings
from hotline.i18n.gsm7 import GSM7_BASIC, GSM7_EXTENSION
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
REGISTERED_DELIVERY = 0x01
STABLE = 30.0  # seconds a session must last for the reconnect backoff to start over  # a receipt on final success or failure

_GSM7_CODE: dict[str, int] = {
    char: (index if index < 0x1B else index + 1) for index, char in enumerate(GSM7_BASIC)
}
_GSM7_EXT_CODE: dict[str, int] = dict(
    zip(GSM7_EXTENSION, (0x0A, 0x14, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40, 0x65), strict=True)
)
_GSM7_CHAR = {code: char for char, code in _GSM7_CODE.items()}
_GSM7_EXT_CHAR = {code: char for char, code in _GSM7_EXT_CODE.items()}

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


def gsm7_octets(text: str) -> bytes:
    """`text` in the GSM 03.38 default alphabet, one septet per octet (SMPP's unpacked
    `data_coding` 0); extension characters as ESC (0x1B) + code."""
    out = bytearray()
    for char in text:
        code = _GSM7_CODE.get(char)
        if code is not None:
            out.append(code)
            continue
        ext = _GSM7_EXT_CODE.get(char)
        if ext is None:
            raise ValueError("not in the GSM 03.38 alphabet")
        out += bytes((0x1B, ext))
    return bytes(out)


def gsm7_text(octets: bytes) -> str:
    """The inverse of `gsm7_octets` (unknown codes become `?`)."""
    chars: list[str] = []
    escape = False
    for octet in octets:
        if escape:
            chars.append(_GSM7_EXT_CHAR.get(octet, "?"))
            escape = False
        elif octet == 0x1B:
            escape = True
        else:
            chars.append(_GSM7_CHAR.get(octet & 0x7F, "?"))
    return "".join(chars)


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


def backoff(attempt: int, low: float, high: float) -> float:
    """Jittered exponential backoff: uniform in [cap/2, cap], cap = min(high, low·2^attempt)
    (binds of many workers after an SMSC restart spread out)."""
    cap = min(high, low * 2 ** max(attempt, 0))
    return random.uniform(cap / 2, cap)


DeliverHandler = Callable[[smpp34.DeliverSmEvent], Awaitable[None]]


class SmppTransport:
    """The outbox sender's transport over one SMPP transceiver session.

    `start()` runs the session task; `submit` waits (up to `submit_timeout`) for a bound
    session, else answers "retry". Inbound `deliver_sm` (MOs, receipts) go to
    `on_deliver` in their own tasks, at most `window` at a time; the library has
    already sent the `deliver_sm_resp`.
    """

    def __init__(self, settings: SmsSettings, on_deliver: DeliverHandler | None = None) -> None:
        if settings.smpp is None:
            raise ValueError("sms.smpp is needed for transport: smpp")
        self.settings = settings
        self.smpp: SmppSettings = settings.smpp
        self.on_deliver = on_deliver
        self._smsc: smpp34.Smsc | None = None
        self._bound = asyncio.Event()
        self._reset = asyncio.Event()  # a generic_nack: drop the session, bind again
        self._window = asyncio.Semaphore(self.smpp.window)
        self._inbound = asyncio.Semaphore(self.smpp.window)
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._refs: LRUCache[str, int] = LRUCache(maxsize=65536)
        #: SMSC message id of any part → (outbox row, the id of its first part), for
        #: receipts racing ahead of `Outbox.sent`.
        self.submitted: LRUCache[str, tuple[int, str]] = LRUCache(maxsize=65536)
        self.binds = 0

    # -- session --------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="smpp-session")

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    async def wait_bound(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._bound.wait()
        return self._bound.is_set()

    def _client(self) -> smpp34.Client:
        return smpp34.Client(
            self.smpp.host,
            self.smpp.port,
            self.smpp.system_id,
            self.smpp.password.get_secret_value(),
            bind_type="TRX",
            system_type=self.smpp.system_type,
            window_size=self.smpp.window,
            connect_timeout_ms=int(min(self.smpp.submit_timeout, 10.0) * 1000),
        )

    async def _run(self) -> None:
        where = f"{self.smpp.host}:{self.smpp.port}"
        attempt = 0
        while True:
            client = self._client()
            try:
                smsc = await client.connect()
            except Exception as exc:  # refused, timed out, bind rejected
                delay = backoff(attempt, self.smpp.reconnect_min, self.smpp.reconnect_max)
                attempt += 1
                log.warning(
                    "smpp: bind to %s failed (%s); again in %.1fs",
                    where,
                    type(exc).__name__,
                    delay,
                )
                with contextlib.suppress(Exception):
                    await client.stop()
                await asyncio.sleep(delay)
                continue
            self.binds += 1
            self._smsc = smsc
            self._reset.clear()
            self._bound.set()
            log.info("smpp: bound as transceiver to %s (bind %d)", where, self.binds)
            began = time.monotonic()
            try:
                await self._session(client, smsc)
            finally:
                self._bound.clear()
                self._smsc = None
                with contextlib.suppress(Exception):
                    await client.stop()
            # A session that lasted is a fresh start; one that ends at once backs off more.
            attempt = 1 if time.monotonic() - began > STABLE else attempt + 1
            delay = backoff(attempt, self.smpp.reconnect_min, self.smpp.reconnect_max)
            log.warning("smpp: session to %s ended; binding again in %.1fs", where, delay)
            await asyncio.sleep(delay)

    async def _session(self, client: smpp34.Client, smsc: smpp34.Smsc) -> None:
        """Read inbound PDUs until the session ends; every `enquire_link` seconds make
        sure the link is alive (the library sends the keepalives)."""
        reader = asyncio.ensure_future(self._read(smsc))
        reset = asyncio.ensure_future(self._reset.wait())
        try:
            while not reader.done():
                done, _ = await asyncio.wait(
                    {reader, reset},
                    timeout=self.smpp.enquire_link,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if reset in done:
                    log.warning("smpp: generic_nack from the SMSC; binding again")
                    with contextlib.suppress(Exception):
                        await smsc.unbind()
                    break
                if done:
                    break
                try:
                    alive = await client.is_alive()
                except Exception:
                    alive = False
                if not alive:
                    log.warning("smpp: link is not alive; reconnecting")
                    break
        finally:
            for task in (reader, reset):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _read(self, smsc: smpp34.Smsc) -> None:
        while True:
            try:
                event = await smsc.next()
            except Exception as exc:
                log.warning("smpp: reading failed (%s)", type(exc).__name__)
                return
            if isinstance(event, smpp34.Disconnected):
                return
            if self.on_deliver is None:
                continue
            await self._inbound.acquire()
            task = asyncio.create_task(self._handle(event))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, event: smpp34.DeliverSmEvent) -> None:
        try:
            assert self.on_deliver is not None
            await self.on_deliver(event)
        except Exception:
            log.exception("smpp: handling a deliver_sm failed")
        finally:
            self._inbound.release()

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
        row: int | None = None,
    ) -> SendOutcome:
        """Submit every part of one message; the first part's message id is its ref.

        A refusal of the first part is the message's outcome; a refusal of a later
        part fails the message (resending would duplicate the parts already out).
        """
        if not await self.wait_bound(self.smpp.submit_timeout):
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
            if row is not None and outcome.smsc_ref:
                self.submitted[outcome.smsc_ref] = (row, first_ref)  # before its receipt
        return SendOutcome("accepted", smsc_ref=first_ref, parts=tuple(refs))

    async def _submit_one(
        self, to: str, body: bytes, coding: int, esm_class: int, source: str, receipt: bool
    ) -> SendOutcome:
        async with self._window:
            smsc = self._smsc
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
                self._reset.set()
                status = _STATUS.search(str(exc))
                code = f" 0x{status.group(1)}" if status else ""
                return SendOutcome("retry", f"smpp: generic_nack or session lost{code}")
            except Exception as exc:  # the session went away under us
                return SendOutcome("retry", f"smpp: {type(exc).__name__}")
        return submit_outcome(resp.command_status, resp.message_id)

    async def submit(self, row: OutboxRow, segments: Segments) -> SendOutcome:
        return await self.send(row.subscriber, segments, row=row.id)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for handler in list(self._handlers):
            handler.cancel()
        for handler in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await handler
