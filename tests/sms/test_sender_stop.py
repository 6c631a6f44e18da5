"""The sender stops when the app stops, whenever the stop lands — also in the loop turns
right after a message woke it (Python 3.11's `asyncio.wait_for` returned the wakeup's
result there and swallowed the cancel: the loop went on and the app's stop waited for
ever, as the analytics recorder's did)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hotline.store.outbox import Outbox
from sms.sender import Sender


async def _idle(sender: Sender) -> asyncio.Task[None]:
    task = asyncio.create_task(sender.run())
    for _ in range(200):  # until it waits for a wakeup (nothing is due)
        await asyncio.sleep(0.01)
        if sender.outbox.wakeup._waiters:  # type: ignore[attr-defined]
            return task
    raise AssertionError("the sender never went idle")


async def test_a_stop_landing_as_a_message_wakes_the_sender_ends_it(tmp_path: Path) -> None:
    outbox = Outbox(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    nothing: Any = object()  # never used while nothing is due
    sender = Sender(outbox, nothing, nothing, rate=10, lease=30, doubt_grace=5)
    try:
        for turns in range(6):
            task = await _idle(sender)
            outbox.wakeup.set()
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=5)
            assert done, f"the sender went on after a stop {turns} loop turns past a wakeup"
    finally:
        await outbox.close()
