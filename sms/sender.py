"""The outbox's sender: words each queued message and submits it to the SMSC, in order,
at the configured rate (`sms.send_rate`), `sms.send_window` rows at a time (1 by default:
a crash then leaves at most one message in doubt; more is faster, up to that many).

One sender task per worker (`sender_ctx`, when `sms.sender` is not `none`). At most
`sms.send_window` rows are `sending` at any time; rows are taken once half the window is
free (as many as are free by then), each take one commit (`Outbox.take`): it records
what the SMSC took since the last take as `sent` and moves the next rows straight to
`sending` (committed: from now on they are *in doubt* if we die). Each is worded and
submitted on its own task; a refusal is recorded at once (a retry with backoff, or a
permanent failure). Rows are taken while the others are still being answered, so the
link never idles between windows: an SMSC whose answers wait for our delayed ACK
(Nagle's algorithm on its side; the library SMSC the bench and tests use) stalled ~40 ms
at every stop-and-wait window. The throttle (`sms.send_rate`) is waited for *before*
rows are taken, never while they are `sending`; when it will make the sender wait, what
was sent is recorded first. Expired leases (a crashed worker's rows) are recovered once
a second while busy and whenever idle. With nothing due it waits for new rows
(`Outbox.wakeup`, set by `send` in this process) or a short poll, for rows other workers
queued. Stopping, it gives submissions under way `STOP_WAIT` to be answered and records
them.

Once an hour it purges messages finished longer ago than `sms.outbox_keep_days`.
Transport errors (the gateway unreachable, a timeout) are transient: retried. Nothing
here logs a number or a text; rows are named by their outbox id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Protocol

import aiohttp
from aiohttp import web
from aiolimiter import AsyncLimiter

from hotline.base.config import SmsSettings
from hotline.flow.screen import PromptPart
from hotline.store.outbox import ALL_PARTS, Accepted, Outbox, OutboxRow
from hotline.web.keys import MESSAGES, SETTINGS
from sms.dialects import SendOutcome, kannel
from sms.render import SmsLayout
from sms.segments import Segments

__all__ = ["KannelTransport", "Sender", "Transport", "sender_ctx"]

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks for rows other workers queued
PURGE_EVERY = 3600.0  # seconds between purges of finished messages (`sms.outbox_keep_days`)
RECOVER_EVERY = 1.0  # seconds between looks for expired leases while busy (each is a commit)
STOP_WAIT = 2.0  # seconds submissions under way may take to be answered when stopping
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
                outcome = kannel.sendsms_outcome(response.status, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendOutcome("retry", f"sendsms unreachable: {type(exc).__name__}")
        if outcome.result == "accepted" and segments.count > 1:
            # Kannel splits the message itself and reports on it per part: once whether
            # the SMSC took every part (8, or 16 when it refused one), and the handset's
            # report of the first part (1.4's sms_split asks the SMSC for no other; a
            # Kannel that reports each part sends more, and a failed one still counts).
            # Each report fills one of these slots; the message is delivered when all
            # are (`Outbox.record_report`).
            return replace(outcome, parts=(ALL_PARTS, ""))
        return outcome

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
        window = max(1, self.window)
        # Rows are taken once half a window is free — the other half still being
        # answered, so the link never idles between windows (an SMSC whose answers wait
        # on our delayed ACK, Nagle's algorithm on its side, stalls ~40 ms at every
        # stop-and-wait window) — and as many as are free by then: when the commit is
        # the slow part, the whole window is free by the time it returns.
        half = max(1, window // 2)
        tokens = max(1, int(self.rate))  # the limiter's capacity: the most one take asks
        purged_at = recovered_at = -PURGE_EVERY
        flying: set[asyncio.Task[Accepted | None]] = set()
        accepted: list[Accepted] = []  # taken by the SMSC, recorded with the next take
        try:
            while True:
                now = time.monotonic()
                if self.keep_days and now - purged_at >= PURGE_EVERY:
                    purged_at = now
                    await self._purge()
                if now - recovered_at >= RECOVER_EVERY:
                    recovered_at = now
                    await self._recover()
                finished = {task for task in flying if task.done()}
                flying -= finished
                accepted += _results(finished)
                while window - len(flying) < half:  # at most `window` rows `sending`
                    done, flying = await asyncio.wait(flying, return_when=FIRST_COMPLETED)
                    accepted += _results(done)
                room = min(window - len(flying), tokens)
                if accepted and not limiter.has_capacity(room):
                    # Throttled: record what was sent now, not after the wait.
                    await self._record(accepted)
                    accepted = []
                await limiter.acquire(room)
                try:
                    rows = await self.outbox.take(room, self.lease, accepted)
                except Exception:  # the database is away: try again shortly, never die
                    log.exception("outbox: taking rows failed; retrying")
                    await asyncio.sleep(1.0)
                    continue
                accepted = []
                for row in rows:
                    flying.add(asyncio.create_task(self._submit(row)))
                if rows:
                    continue
                if flying:  # nothing due: record what is in flight as it finishes
                    done, flying = await asyncio.wait(flying, return_when=FIRST_COMPLETED)
                    accepted += _results(done)
                    continue
                self.outbox.wakeup.clear()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the
                # result when a cancel (the app stopping) lands just as the wakeup fires,
                # and this loop would go on for ever (the analytics recorder hung so).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL):
                        await self.outbox.wakeup.wait()
                recovered_at = -RECOVER_EVERY  # idle: look for expired leases too
        finally:
            # Stopping: submissions under way get a moment to be answered, and what the
            # SMSC took is recorded; a row still `sending` is left to `recover` (in
            # doubt, never resent).
            if flying:
                done, pending = await asyncio.wait(flying, timeout=STOP_WAIT)
                for task in pending:
                    task.cancel()
                accepted += _results(done)
            if accepted:
                await asyncio.shield(self._record(accepted))

    async def _record(self, accepted: list[Accepted]) -> None:
        try:
            await self.outbox.sent_many(accepted)
        except Exception:  # recorded by a report, or in doubt once the lease ends
            log.exception("outbox %s: recording sent failed", [a.id for a in accepted])

    async def _submit(self, row: OutboxRow) -> Accepted | None:
        """Word and submit one row already `sending` (`Outbox.take`): what the SMSC took
        (recorded by the caller with its next take), or None — a refusal or a message
        that cannot be worded is recorded here."""
        try:
            text = self.layout.message(PromptPart(row.key, row.values), row.language)
        except KeyError:
            await self.outbox.fail(row.id, f"no prompt {row.key!r}")
            return None
        outcome = await self.transport.submit(row, text.segments)
        if outcome.result == "accepted":
            return Accepted(row.id, outcome.smsc_ref, outcome.parts)
        await self._refused(row, outcome)
        return None

    async def _purge(self) -> None:
        try:
            gone = await self.outbox.purge(self.keep_days * 86400)
            if gone:
                log.info("outbox: purged %d finished message(s)", gone)
        except Exception:
            log.exception("outbox: purging failed; next time")

    async def _recover(self) -> None:
        try:
            moved = await self.outbox.recover(self.doubt_grace)
            if any(moved.values()):
                log.warning("outbox recovered expired leases: %s", moved)
        except Exception:
            log.exception("outbox: recovering leases failed; next time")

    async def _refused(self, row: OutboxRow, outcome: SendOutcome) -> str:
        if outcome.result == "retry":
            log.warning("outbox %d: transient refusal (%s); retrying", row.id, outcome.reason)
            return await self.outbox.retry(row.id, outcome.reason, row.attempts + 1)
        log.warning("outbox %d: refused (%s)", row.id, outcome.reason)
        await self.outbox.fail(row.id, outcome.reason)
        return "failed"


def _results(done: set[asyncio.Task[Accepted | None]]) -> list[Accepted]:
    """What finished submissions the SMSC took (a submission that raised is logged: its
    row stays `sending`, in doubt once its lease ends)."""
    taken = []
    for task in done:
        if task.cancelled():
            continue
        if (error := task.exception()) is not None:
            log.error("outbox: a submission failed", exc_info=error)
        elif (result := task.result()) is not None:
            taken.append(result)
    return taken


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
