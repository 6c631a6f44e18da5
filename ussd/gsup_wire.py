"""The Osmocom EUSE's wire: IPA framing, GSUP messages and GSM 04.80 USSD components.

- **IPA** (hand-written; no maintained Python library frames it): a 3-octet header —
  payload length (2 octets, big-endian) and a protocol octet: 0xFE CCM (identity
  exchange: ID_GET 0x04 → ID_RESP 0x05 + ID_ACK 0x06; PING 0x00 → PONG 0x01), 0xEE the
  Osmocom extensions, whose first payload octet names one: 0x05 GSUP, 0x00 CTRL.
- **GSUP** (libosmocore `gsup.c`): a message type octet, then tag-length-value IEs:
  IMSI 0x01 (BCD, low nibble first, `F` filler), cause 0x02, MSISDN 0x08, message
  class 0x0A (3 = USSD), session id 0x30 (4 octets), session state 0x31 (1 BEGIN,
  2 CONTINUE, 3 END), SS info 0x35 (the 04.80 facility), source / destination name
  0x60 / 0x61. PROC_SS request 0x20, error 0x21, result 0x22.
- **GSM 04.80** components in the SS info: `pycrate`'s TS 24.080 ASN.1 (`SS-Facility`)
  encodes and decodes them; `pycrate`'s TS 23.038 packs the default alphabet into
  septets (DCS 0x0F, `<CR>` padding); UCS-2 screens go as DCS 0x48.

Pure functions on bytes; `pycrate` is imported on first use (its ASN.1 module takes a
second or so to load), so an app without a GSUP link never pays for it.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from hotline.i18n.gsm7 import is_gsm7

__all__ = [
    "CCM_ID_ACK",
    "CCM_ID_GET",
    "CCM_ID_RESP",
    "CCM_PING",
    "CCM_PONG",
    "IPA_CCM",
    "IPA_OSMO",
    "OSMO_CTRL",
    "OSMO_GSUP",
    "Component",
    "GsupMessage",
    "decode_component",
    "frame",
    "id_resp",
    "invoke_ussr",
    "return_error",
    "return_result",
    "ussd_decode",
    "ussd_encode",
]

IPA_CCM = 0xFE
IPA_OSMO = 0xEE
OSMO_GSUP = 0x05
OSMO_CTRL = 0x00
CCM_PING, CCM_PONG, CCM_ID_GET, CCM_ID_RESP, CCM_ID_ACK = 0x00, 0x01, 0x04, 0x05, 0x06
IDTAG_SERNR, IDTAG_UNITNAME = 0x00, 0x01

PROC_SS_REQUEST, PROC_SS_ERROR, PROC_SS_RESULT = 0x20, 0x21, 0x22
BEGIN, CONTINUE, END = 1, 2, 3
CLASS_USSD = 3

IE_IMSI, IE_CAUSE, IE_MSISDN, IE_CLASS = 0x01, 0x02, 0x08, 0x0A
IE_SESSION_ID, IE_SESSION_STATE, IE_SS_INFO = 0x30, 0x31, 0x35
IE_SOURCE, IE_DESTINATION = 0x60, 0x61

OP_PROCESS_USS_REQ = 0x3B  # processUnstructuredSS-Request: the subscriber's dial
OP_USS_REQ = 0x3C  # unstructuredSS-Request: our question, the subscriber answers
DCS_GSM7, DCS_UCS2 = 0x0F, 0x48
ERROR_SYSTEM_FAILURE, ERROR_UNEXPECTED_DATA = 34, 36


def frame(proto: int, payload: bytes) -> bytes:
    """One IPA frame."""
    return struct.pack(">HB", len(payload), proto) + payload


def id_resp(request: bytes, name: str) -> bytes:
    """The CCM ID_RESP payload to an ID_GET payload (`request`, after its type octet:
    pairs of length 1 + tag): our name as serial number and unit name, NUL-terminated,
    each IE as 2-octet length (tag included), tag, value."""
    value = name.encode("ascii") + b"\x00"
    out = bytearray((CCM_ID_RESP,))
    tags = [request[i + 1] for i in range(0, len(request) - 1, 2) if request[i] == 1]
    for tag in tags or [IDTAG_SERNR, IDTAG_UNITNAME]:
        item = value if tag in (IDTAG_SERNR, IDTAG_UNITNAME) else b"\x00"
        out += struct.pack(">HB", len(item) + 1, tag) + item
    return bytes(out)


def _bcd(digits: str) -> bytes:
    nibbles = [int(d) for d in digits] + ([0xF] if len(digits) % 2 else [])
    return bytes(nibbles[i] | (nibbles[i + 1] << 4) for i in range(0, len(nibbles), 2))


def _digits(octets: bytes) -> str:
    out: list[str] = []
    for octet in octets:
        for nibble in (octet & 0x0F, octet >> 4):
            if nibble == 0xF:
                return "".join(out)
            if nibble > 9:
                raise ValueError("not a BCD number")
            out.append(str(nibble))
    return "".join(out)


@dataclass(slots=True)
class GsupMessage:
    """The GSUP fields a USSD dialogue uses; decoding keeps the names as sent."""

    msg_type: int
    imsi: str
    session_id: int | None = None
    session_state: int | None = None
    ss_info: bytes | None = None
    message_class: int | None = None
    msisdn: str | None = None
    cause: int | None = None
    source_name: bytes | None = None
    destination_name: bytes | None = None
    unknown: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        out = bytearray((self.msg_type,))

        def put(tag: int, value: bytes) -> None:
            if len(value) > 255:
                raise ValueError(f"GSUP IE 0x{tag:02X} longer than 255 octets")
            out.extend((tag, len(value)))
            out.extend(value)

        put(IE_IMSI, _bcd(self.imsi))
        if self.cause is not None:
            put(IE_CAUSE, bytes((self.cause,)))
        if self.msisdn is not None:
            put(IE_MSISDN, b"\x91" + _bcd(self.msisdn))  # international, ISDN
        if self.message_class is not None:
            put(IE_CLASS, bytes((self.message_class,)))
        if self.session_id is not None:
            put(IE_SESSION_ID, struct.pack(">I", self.session_id))
        if self.session_state is not None:
            put(IE_SESSION_STATE, bytes((self.session_state,)))
        if self.ss_info is not None:
            put(IE_SS_INFO, self.ss_info)
        if self.source_name is not None:
            put(IE_SOURCE, self.source_name)
        if self.destination_name is not None:
            put(IE_DESTINATION, self.destination_name)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> GsupMessage:
        """Raises `ValueError` on a message that is cut short or has no IMSI."""
        if not data:
            raise ValueError("empty GSUP message")
        message = cls(msg_type=data[0], imsi="")
        at = 1
        while at < len(data):
            if at + 2 > len(data):
                raise ValueError("GSUP IE header cut short")
            tag, size = data[at], data[at + 1]
            value = data[at + 2 : at + 2 + size]
            if len(value) != size:
                raise ValueError(f"GSUP IE 0x{tag:02X} cut short")
            at += 2 + size
            if tag == IE_IMSI:
                message.imsi = _digits(value)
            elif tag == IE_CAUSE and size == 1:
                message.cause = value[0]
            elif tag == IE_MSISDN and size:
                message.msisdn = _digits(value[1:] if value[0] & 0x80 else value)
            elif tag == IE_CLASS and size == 1:
                message.message_class = value[0]
            elif tag == IE_SESSION_ID and size == 4:
                (message.session_id,) = struct.unpack(">I", value)
            elif tag == IE_SESSION_STATE and size == 1:
                message.session_state = value[0]
            elif tag == IE_SS_INFO:
                message.ss_info = value
            elif tag == IE_SOURCE:
                message.source_name = value
            elif tag == IE_DESTINATION:
                message.destination_name = value
            else:
                message.unknown.append(tag)
        if not message.imsi:
            raise ValueError("GSUP message without IMSI")
        return message


# ------------------------------------------------------------------ GSM 04.80


@functools.cache
def _facility() -> Any:
    from pycrate_asn1dir import SS

    return SS.SS_Facility.Facility


def ussd_encode(text: str) -> tuple[int, bytes]:
    """DCS and octets of a USSD string: the default alphabet packed into septets
    (0x0F) when every character has a septet, else UCS-2 (0x48)."""
    if is_gsm7(text):
        from pycrate_mobile.TS23038 import encode_7b

        packed, _ = encode_7b(text)
        return DCS_GSM7, bytes(packed)
    return DCS_UCS2, text.encode("utf-16-be", "surrogatepass")


def ussd_decode(dcs: int, octets: bytes) -> str:
    """A USSD string by its DCS (TS 23.038 §5): UCS-2 (0x48, or a general-coding DCS
    saying UCS-2), 8-bit data as Latin-1, the packed default alphabet otherwise."""
    group, coding = dcs >> 4, (dcs >> 2) & 0x03
    if dcs == DCS_UCS2 or (group in (0x4, 0x5, 0x6, 0x7, 0x9) and coding == 2):
        return octets.decode("utf-16-be", "replace")
    if group in (0x4, 0x5, 0x6, 0x7, 0x9) and coding == 1:
        return octets.decode("latin-1")
    from pycrate_mobile.TS23038 import decode_7b

    return str(decode_7b(octets))


@dataclass(frozen=True, slots=True)
class Component:
    """One 04.80 component: its kind, invoke id, operation and USSD string, if any."""

    kind: Literal["invoke", "returnResult", "returnError", "reject"]
    invoke_id: int
    opcode: int | None = None
    text: str | None = None


def decode_component(ss_info: bytes) -> Component:
    """The first component of a facility; raises `ValueError` when it is not one."""
    facility = _facility()
    try:
        facility.from_ber(ss_info)
        kind, value = facility.get_val()
    except Exception as exc:
        raise ValueError(f"not a GSM 04.80 component ({type(exc).__name__})") from None
    invoke_id = int(value.get("invokeID", 0)) if isinstance(value, dict) else 0
    opcode: int | None = None
    parameters: Any = None
    if kind == "invoke":
        opcode = value["operationCode"][1]
        parameters = value.get("parameters")
    elif kind == "returnResult" and "sequence" in value:
        opcode = value["sequence"]["operationCode"][1]
        parameters = value["sequence"].get("parameters")
    text = None
    if parameters and parameters[0] in ("USSD-Arg", "USSD-Res"):
        dcs = parameters[1]["ussd-DataCodingScheme"]
        text = ussd_decode(dcs[0] if dcs else DCS_GSM7, bytes(parameters[1]["ussd-String"]))
    if kind not in ("invoke", "returnResult", "returnError", "reject"):
        raise ValueError(f"unknown component {kind}")
    return Component(kind, invoke_id, opcode, text)


def _ussd(text: str) -> dict[str, bytes]:
    dcs, octets = ussd_encode(text or " ")  # a USSD string holds 1-160 octets
    return {"ussd-DataCodingScheme": bytes((dcs,)), "ussd-String": octets}


def invoke_ussr(invoke_id: int, text: str) -> bytes:
    """Our question (unstructuredSS-Request invoke): the subscriber answers it."""
    facility = _facility()
    facility.set_val(
        (
            "invoke",
            {
                "invokeID": invoke_id,
                "operationCode": ("local", OP_USS_REQ),
                "parameters": ("USSD-Arg", _ussd(text)),
            },
        )
    )
    return bytes(facility.to_ber())


def return_result(invoke_id: int, text: str) -> bytes:
    """Our last screen: the result of the subscriber's processUnstructuredSS-Request."""
    facility = _facility()
    facility.set_val(
        (
            "returnResult",
            {
                "invokeID": invoke_id,
                "sequence": {
                    "operationCode": ("local", OP_PROCESS_USS_REQ),
                    "parameters": ("USSD-Res", _ussd(text)),
                },
            },
        )
    )
    return bytes(facility.to_ber())


def return_error(invoke_id: int, code: int = ERROR_UNEXPECTED_DATA) -> bytes:
    """A ReturnError component (e.g. 36 unexpectedDataValue)."""
    facility = _facility()
    facility.set_val(("returnError", {"invokeID": invoke_id, "errorCode": ("local", code)}))
    return bytes(facility.to_ber())
