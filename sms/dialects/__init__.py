"""SMS gateway dialects: one module per wire format (`sms/dialects/kannel.py` first).

A dialect is pure: it reads a gateway's HTTP callback (`WireRequest`) into an
`IncomingSms` or raises `BadGatewayRequest(reason)`, writes the reply, reads delivery
reports and builds and judges outgoing requests; the routes and the sender do the I/O.
"""

from __future__ import annotations

from sms.dialects.base import DeliveryReport, SendOutcome, WireRequest

__all__ = ["DeliveryReport", "SendOutcome", "WireRequest"]
