"""The plain data every SMS dialect reads and writes (no aiohttp objects inside)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DeliveryReport", "SendOutcome", "WireRequest"]


@dataclass(frozen=True, slots=True)
class WireRequest:
    """A gateway's HTTP request as bytes and strings: the raw query string (still
    percent-encoded: a UCS-2 text arrives as UTF-16BE bytes), headers and body."""

    method: str
    query: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A delivery report for an outgoing message: our reference (the outbox row), the
    state it reports and the SMSC's own id when given."""

    ref: int
    state: Literal["delivered", "failed", "accepted", "buffered"]
    smsc_ref: str = ""


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """How the gateway answered one submission.

    `accepted`: it took the message (`smsc_ref` when it said one); `retry`: a transient
    refusal (throttled, queue full, unreachable) — try again later; `permanent`: it will
    never take this message (bad number, refused credentials).
    """

    result: Literal["accepted", "retry", "permanent"]
    reason: str = ""
    smsc_ref: str = ""
    parts: tuple[str, ...] = ()  # the SMSC's id of each part, when it said them (SMPP)
