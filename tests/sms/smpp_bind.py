"""What the SMPP tests of both channels share (`tests/sms/test_smpp.py`,
`tests/ussd/test_smpp.py`): the SMSC peer (`tests/sms/smsc.py`) on a free port, and a
bind to it that notices a dead link and binds again within a second."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.conftest import free_port
from tests.sms.smsc import SmscPeer

__all__ = ["fast_bind", "running_peer"]


@asynccontextmanager
async def running_peer() -> AsyncIterator[SmscPeer]:
    """An SMSC peer in its own process, stopped on the way out."""
    peer = SmscPeer(free_port())
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


def fast_bind(port: int, system_id: str, password: str) -> dict[str, Any]:
    """`SmppSettings` fields for a bind to the peer on `port`: `enquire_link` every
    second, binding again after 0.1-0.5 s, a `submit_sm` given up after 3 s."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "system_id": system_id,
        "password": password,
        "enquire_link": 1.0,
        "reconnect_min": 0.1,
        "reconnect_max": 0.5,
        "submit_timeout": 3.0,
    }
