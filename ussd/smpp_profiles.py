"""USSD over SMPP: what a USSD gateway's `deliver_sm` means, and the TLVs of our answer.

An operator's USSD gateway hands each dialogue to an ESME over SMPP 3.4: the dialled
string or the subscriber's answer in `short_message`, the dialogue's step in the
`ussd_service_op` TLV (0x0501, one octet) and, with many gateways, the dialogue in the
`its_session_info` TLV (0x1383, two octets). Vendors disagree on the codes, so the
codes are a *profile*, chosen by configuration (`ussd_smpp.profile`):

| profile | dial | answer | abort | our screen, more to come | our last screen | session |
|---|---|---|---|---|---|---|
| `3gpp` | 1 PSSR indication | 18 USSR confirm | `abort_op` (vendor) | 2 USSR request | 17 PSSR response | the subscriber (+ `its_session_info`, echoed) |
| `sixdee` | 0x01 | 0x12 | 0x81, or the end bit | 0x02 | 0x17 | `its_session_info`: dialog id << 1 \\| end bit |

(3GPP codes: SMPP 3.4 §5.3.2.44, Wireshark `packet-smpp.c`; the 6D scheme:
praekeltfoundation/vumi `vumi/transports/smpp/processors/sixdee.py`.)

Pure functions on plain values: no sockets, no `smpp34` objects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "TLV_ITS_SESSION_INFO",
    "TLV_USSD_SERVICE_OP",
    "Incoming",
    "Profile",
    "SixDee",
    "ThreeGpp",
    "profile_named",
]

TLV_USSD_SERVICE_OP = 0x0501
TLV_ITS_SESSION_INFO = 0x1383

Kind = Literal["start", "input", "abort", "unknown"]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One `deliver_sm` of a dialogue, read by a profile.

    `dialog` names the dialogue within the subscriber's (None: the profile keys on the
    subscriber alone); `unknown` carries `reason` — an op code or session TLV the
    profile cannot place, answered on the profile's error path.
    """

    kind: Kind
    op: int | None
    dialog: str | None
    session_info: bytes | None
    reason: str = ""


class Profile(Protocol):
    """A vendor's USSD-over-SMPP codes."""

    @property
    def name(self) -> str: ...

    def read(self, op: int | None, session_info: bytes | None) -> Incoming:
        """What a `deliver_sm` with this `ussd_service_op` / `its_session_info` is."""
        ...

    def answer(self, incoming: Incoming, ends: bool) -> tuple[int, bytes | None]:
        """Our `ussd_service_op` and `its_session_info` for a screen that does / does not
        end the dialogue."""
        ...


@dataclass(frozen=True, slots=True)
class ThreeGpp:
    """The SMPP 3.4 operations: 1 PSSR indication → 2 USSR request (more to come) or
    17 PSSR response (the end); 18 USSR confirm is the subscriber's answer.

    SMPP 3.4 names no abort: gateways send a vendor op (32-255) — `abort_op`.
    `its_session_info`, when the gateway sends it, is opaque and echoed back.
    """

    abort_op: int | None = None
    name: str = "3gpp"

    PSSR_INDICATION = 1
    USSR_REQUEST = 2
    PSSR_RESPONSE = 17
    USSR_CONFIRM = 18

    def read(self, op: int | None, session_info: bytes | None) -> Incoming:
        dialog = session_info.hex() if session_info else None
        if op == self.PSSR_INDICATION:
            return Incoming("start", op, dialog, session_info)
        if op == self.USSR_CONFIRM:
            return Incoming("input", op, dialog, session_info)
        if op is not None and op == self.abort_op:
            return Incoming("abort", op, dialog, session_info)
        what = "no ussd_service_op" if op is None else f"ussd_service_op {op}"
        return Incoming("unknown", op, dialog, session_info, f"{what} is not a 3gpp dialogue step")

    def answer(self, incoming: Incoming, ends: bool) -> tuple[int, bytes | None]:
        return (self.PSSR_RESPONSE if ends else self.USSR_REQUEST), incoming.session_info


@dataclass(frozen=True, slots=True)
class SixDee:
    """The 6D gateway's scheme: 0x01 new, 0x12 continue, 0x81 user abort in; 0x02
    continue, 0x17 close out. `its_session_info` (two octets, big-endian) is the
    15-bit dialog id shifted left once, plus an end-of-session bit: set by the gateway
    when the dialogue is over, set by us on our last screen."""

    name: str = "sixdee"

    NEW = 0x01
    CONTINUE = 0x12
    ABORT = 0x81
    REPLY_CONTINUE = 0x02
    REPLY_CLOSE = 0x17

    @staticmethod
    def session_info(dialog: int, end: bool) -> bytes:
        return struct.pack(">H", ((dialog & 0x7FFF) << 1) | int(end))

    def read(self, op: int | None, session_info: bytes | None) -> Incoming:
        if session_info is None or len(session_info) != 2:
            got = "none" if session_info is None else f"{len(session_info)} octets"
            return Incoming(
                "unknown", op, None, session_info, f"its_session_info must be 2 octets ({got})"
            )
        (value,) = struct.unpack(">H", session_info)
        dialog, end = str(value >> 1), bool(value & 1)
        if op == self.ABORT or (end and op in (self.NEW, self.CONTINUE)):
            return Incoming("abort", op, dialog, session_info)
        if op == self.NEW:
            return Incoming("start", op, dialog, session_info)
        if op == self.CONTINUE:
            return Incoming("input", op, dialog, session_info)
        what = "no ussd_service_op" if op is None else f"ussd_service_op 0x{op:02X}"
        return Incoming("unknown", op, dialog, session_info, f"{what} is not a 6D dialogue step")

    def answer(self, incoming: Incoming, ends: bool) -> tuple[int, bytes | None]:
        op = self.REPLY_CLOSE if ends else self.REPLY_CONTINUE
        if incoming.dialog is None:
            return op, None  # nothing to address: the gateway drops it, we logged why
        return op, self.session_info(int(incoming.dialog), ends)


def profile_named(name: str, abort_op: int | None = None) -> Profile:
    """The profile configured as `name` (`3gpp` or `sixdee`)."""
    if name == "sixdee":
        return SixDee()
    if name == "3gpp":
        return ThreeGpp(abort_op)
    raise ValueError(f"unknown USSD-over-SMPP profile {name!r}")
