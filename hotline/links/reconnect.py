"""What every long-lived link to a peer (the SMPP binds, the GSUP connection to osmo-hlr)
does the same way: jittered backoff between attempts, a fresh start after a session
that lasted, and, on shutdown, its session task and in-flight handlers stopped."""

from __future__ import annotations

import asyncio
import logging
import random

__all__ = ["STABLE", "STOP_WITHIN", "backoff", "next_attempt", "stop"]

log = logging.getLogger(__name__)

STOP_WITHIN = 5.0  # seconds a stopping link waits for its tasks
STABLE = 30.0  # seconds a session must last for the reconnect backoff to start over


def backoff(attempt: int, low: float, high: float) -> float:
    """Jittered exponential backoff: uniform in [cap/2, cap], cap = min(high, low·2^attempt)
    (binds of many workers after a peer's restart spread out)."""
    # The exponent is bounded: a link down for a long time counts attempts past what a
    # float can hold (low * 2**1024 overflows).
    cap = min(high, low * 2 ** min(max(attempt, 0), 32))
    return random.uniform(cap / 2, cap)


def next_attempt(attempt: int, lasted: float) -> int:
    """The attempt to back off for after a session that lasted `lasted` seconds: one that
    lasted is a fresh start; one that ends at once backs off more."""
    return 1 if lasted > STABLE else attempt + 1


async def stop(task: asyncio.Task[None] | None, handlers: set[asyncio.Task[None]]) -> None:
    """Cancel the link's session task, then the handlers still running, and wait for all
    of them (a handler's failure was logged where it happened)."""
    pending = ([task] if task is not None else []) + list(handlers)
    for each in pending:
        each.cancel()
    if pending:
        # Bounded: a peer library's read that ignores a cancel must not hang shutdown.
        _, stuck = await asyncio.wait(pending, timeout=STOP_WITHIN)
        if stuck:
            log.warning("%d link task(s) still running %.0fs after stop", len(stuck), STOP_WITHIN)
