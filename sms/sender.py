"""The outbox's sender: words each queued message and submits it to the SMSC, in order,
at the configured rate (`sms.send_rate`), `sms.send_window` rows at a time (1 by default:
a crash then leaves at most one message in doubt; more is faster, up to that many).

One sender task per worker (`sender_ctx`, when `sms.sender` is not `none`). Each round:
`recover` expired leases (a crashed worker's rows), `claim` a batch (one second's worth
of the rate), then for each window `begin_many` (committed: from now on its rows are *in
doubt* if we die), submit them concurrently, and record what the gateway said — `sent`
(one commit for the window), a retry with backoff, or a permanent failure. Between rounds it waits for new rows (`Outbox.wakeup`, set by
`send` in this process) or a short poll, for rows other workers queued.

Once an hour it purges messages finished longer ago than `sms.outbox_keep_days`.
Transport errors (the gateway unreachable, a timeout) are transient: retried. Nothing
here logs a number or a text; rows are named by their outbox id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web
from aiolimiter import AsyncLimiter

from hotline.base.config import SmsSettings
from hotline.flow.screen import PromptPart
from hotline.store.outbox import Outbox, OutboxRow
from hotline.web.keys import MESSAGES, SETTINGS
from sms.dialects import SendOutcome, kannel
from sms.render import SmsLayout
from sms.segments import Segments

__all__ = ["KannelTransport", "Sender", "Transport", "sender_ctx"]

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks for rows other workers queued
PURGE_EVERY = 3600.0  # seconds between purges of finished messages (`sms.outbox_keep_days`)
SUBMIT_TIMEOUT = 10.0


class Transport(Protocol):
    """How one message reaches the SMSC."""

    async def submit(self, row: OutboxRow, segments: Segments) -> SendOutcome: ...

    async def close(self) -> None: ...


class KannelTransport:
    """smsbox's `sendsms` interface (`sms.dialects.kannel`), delivery reports to
    `<public_base_url>/sms/kannel/dlr`."""

    def __init__(self, settings: SmsSettings) -> None:
        if not settings.kannel_sendsms_url:
            raise ValueError("sms.kannel_sendsms_url is needed for sender: kannel")
        self.settings = settings
        self.url = settings.kannel_sendsms_url
        base = settings.public_base_url
        self.report_url = f"{base.rstrip('/')}{kannel.REPORT_PATH}" if base else None
        self._session: aiohttp.ClientSession | None = None

    async def submit(self, row: OutboxRow, segments: Segments) -> SendOutcome:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=SUBMIT_TIMEOUT)
            )
        params = kannel.sendsms_params(
            settings=self.settings,
            to=row.subscriber,
            segments=segments,
            ref=row.id,
            report_url=self.report_url,
        )
        try:
            async with self._session.get(self.url, params=params) as response:
                body = await response.text(errors="replace")
                return kannel.sendsms_outcome(response.status, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendOutcome("retry", f"sendsms unreachable: {type(exc).__name__}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class _Shared:
    """A transport the sender uses but does not own (closing it is a no-op)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def submit(self, row: OutboxRow, segments: Segments) -> SendOutcome:
        return await self.inner.submit(row, segments)

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class Sender:
    """Delivers the outbox through one transport."""

    outbox: Outbox
    transport: Transport
    layout: SmsLayout
    rate: float
    lease: float
    doubt_grace: float
    keep_days: float = 0.0
    window: int = 1  # messages submitted at once (`sms.send_window`)

    async def run(self) -> None:
        limiter = AsyncLimiter(self.rate, 1.0)
        batch = max(1, min(500, int(self.rate)))
        purged_at = 0.0
        while True:
            now = time.monotonic()
            if self.keep_days and now - purged_at >= PURGE_EVERY:
                purged_at = now
                try:
                    gone = await self.outbox.purge(self.keep_days * 86400)
                    if gone:
                        log.info("outbox: purged %d finished message(s)", gone)
                except Exception:
                    log.exception("outbox: purging failed; next time")
            try:
                moved = await self.outbox.recover(self.doubt_grace)
                if any(moved.values()):
                    log.warning("outbox recovered expired leases: %s", moved)
                rows = await self.outbox.claim(batch, self.lease)
            except Exception:  # the database is away: try again shortly, never die
                log.exception("outbox: claiming failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if not rows:
                self.outbox.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.outbox.wakeup.wait(), POLL)
                continue
            step = max(1, self.window)
            for index in range(0, len(rows), step):
                chunk = rows[index : index + step]
                try:
                    for _ in chunk:
                        await limiter.acquire()
                    await self.deliver_window(chunk)
                except Exception:  # their leases run out and `recover` decides
                    log.exception("outbox %s: delivery failed", [r.id for r in chunk])
                except asyncio.CancelledError:
                    # Rows not yet begun go back to the queue; begun ones (`sending`)
                    # are left alone: `recover` makes them in doubt, never resent.
                    for rest in rows[index:]:
                        await asyncio.shield(self.outbox.release(rest.id))
                    raise

    async def deliver_window(self, rows: list[OutboxRow]) -> list[str]:
        """Submit several claimed rows at once: all marked `sending` in one commit, then
        submitted concurrently, the accepted ones recorded `sent` in one commit. The
        states they end in, in order. (One commit per window, not two per message: the
        crash rule is the same — a row is `sending` before it can reach the SMSC.)"""
        if len(rows) == 1:
            return [await self.deliver(rows[0])]
        worded: list[tuple[OutboxRow, Segments]] = []
        ends: dict[int, str] = {}
        for row in rows:
            try:
                text = self.layout.message(PromptPart(row.key, row.values), row.language)
            except KeyError:
                await self.outbox.fail(row.id, f"no prompt {row.key!r}")
                ends[row.id] = "failed"
                continue
            worded.append((row, text.segments))
        held = set(await self.outbox.begin_many([row.id for row, _ in worded], self.lease))
        going = [(row, segments) for row, segments in worded if row.id in held]
        for row, _ in worded:
            if row.id not in held:
                ends[row.id] = "lost"  # the claim ran out; someone else has it now
        outcomes = await asyncio.gather(
            *(self.transport.submit(row, segments) for row, segments in going)
        )
        accepted = []
        for (row, _), outcome in zip(going, outcomes, strict=True):
            if outcome.result == "accepted":
                accepted.append((row.id, outcome.smsc_ref, outcome.parts))
                ends[row.id] = "sent"
            else:
                ends[row.id] = await self._refused(row, outcome)
        await self.outbox.sent_many(accepted)
        return [ends[row.id] for row in rows]

    async def _refused(self, row: OutboxRow, outcome: SendOutcome) -> str:
        if outcome.result == "retry":
            log.warning("outbox %d: transient refusal (%s); retrying", row.id, outcome.reason)
            return await self.outbox.retry(row.id, outcome.reason, row.attempts + 1)
        log.warning("outbox %d: refused (%s)", row.id, outcome.reason)
        await self.outbox.fail(row.id, outcome.reason)
        return "failed"

    async def deliver(self, row: OutboxRow) -> str:
        """Submit one claimed row; the state it ends in."""
        try:
            text = self.layout.message(PromptPart(row.key, row.values), row.language)
        except KeyError:
            await self.outbox.fail(row.id, f"no prompt {row.key!r}")
            return "failed"
        if not await self.outbox.begin(row.id, self.lease):
            return "lost"  # the claim ran out; someone else has it now
        outcome = await self.transport.submit(row, text.segments)
        if outcome.result == "accepted":
            await self.outbox.sent(row.id, outcome.smsc_ref, outcome.parts)
            return "sent"
        return await self._refused(row, outcome)


async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the sender for the app's outbox when `sms.sender` names a transport."""
    settings = app[SETTINGS].sms
    if settings.sender == "none":
        yield
        return
    from sms.routes import SMS_LAYOUT

    transport: Transport
    if settings.transport == "smpp":
        from sms.smpp_link import SMPP_TRANSPORT

        transport = _Shared(app[SMPP_TRANSPORT])  # the session is smpp_ctx's to close
    else:
        transport = KannelTransport(settings)
    layout = app.get(SMS_LAYOUT)
    if layout is None:  # on_startup (which builds it) runs after the cleanup contexts
        from hotline.web.keys import ENGINE

        layout = SmsLayout.from_settings(app[ENGINE].catalogs, settings)
    sender = Sender(
        app[MESSAGES],
        transport,
        layout,
        rate=settings.send_rate,
        lease=settings.lease_seconds,
        doubt_grace=settings.doubt_grace,
        keep_days=settings.outbox_keep_days,
        window=settings.send_window,
    )
    task = asyncio.create_task(sender.run(), name="sms-sender")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await transport.close()
