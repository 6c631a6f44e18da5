"""The reminders service: opt in/out for flows, and events in → at most one SMS out.

`Reminders.handle(event)` is the one path every event takes (JetStream, the HTTP
endpoint, a balance lookup hotline made anyway):

1. the store applies it in one transaction (`ReminderStore.apply`): stale events
   change nothing, a balance at or over the threshold re-arms, a fall below an armed
   threshold *decides* a crossing — a row unique per (subscriber, rule, generation);
2. each decided crossing is *dispatched*: inside quiet hours or over the daily cap it
   is deferred (`due_at`); otherwise the SMS is queued in the outbox with the
   crossing's natural key as `dedupe`, then the crossing is marked `queued`.

A worker killed between 1 and 2 leaves a `decided` row: the redelivered event (it was
never acknowledged) or the sweep finds it and dispatches it again; the outbox's dedupe
key makes a second queueing a no-op. So redeliveries, duplicates, racing workers and
crashes all end with one SMS per crossing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hotline.base.privacy import Pseudonymizer, canonical_msisdn
from hotline.base.values import Count, Money, Text
from hotline.reminders.events import BalanceEvent
from hotline.reminders.quiet import QuietHours
from hotline.reminders.store import Crossing, ReminderStore

if TYPE_CHECKING:
    from hotline.balance.model import BalanceSnapshot
    from hotline.flow.services import BalanceService, MessagesService

__all__ = ["SMS_KEY", "ObservedBalance", "Reminders"]

log = logging.getLogger(__name__)

#: The catalog sentence of the reminder SMS (prompts/*.yaml `reminder.sms`).
SMS_KEY = "reminder.sms"


class Reminders:
    """`Services.reminders`, plus event handling and the sweep."""

    def __init__(
        self,
        store: ReminderStore,
        messages: MessagesService,
        *,
        quiet: QuietHours,
        pseudonym: Pseudonymizer,
        thresholds: tuple[int, ...] = (5, 10, 20, 50),
        currency: str = "CNY",
        keyword_off: str = "QXTX",
        daily_cap: int = 3,
        stuck_after: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.messages = messages
        self.quiet = quiet
        self.pseudonym = pseudonym
        self._thresholds = tuple(sorted(set(thresholds)))
        self.currency = currency
        self._keyword_off = keyword_off
        self.daily_cap = daily_cap
        self.stuck_after = stuck_after
        self.clock = clock
        #: Outcomes in this process (metrics, `status`, the bench).
        self.counts: Counter[str] = Counter()

    # --------------------------------------------------- RemindersService

    @property
    def thresholds(self) -> tuple[int, ...]:
        return self._thresholds

    @property
    def keyword_off(self) -> str:
        return self._keyword_off

    async def subscribe(
        self, subscriber: str, threshold: int, /, *, channel: str, language: str
    ) -> None:
        if threshold not in self._thresholds:
            raise ValueError(f"threshold must be one of {self._thresholds}")
        await self.store.subscribe(
            canonical_msisdn(subscriber),
            threshold * 100,
            self.currency,
            channel=channel,
            language=language,
        )
        log.info("reminders: %s opted in via %s", self.pseudonym(subscriber), channel)

    async def unsubscribe(self, subscriber: str, /, *, channel: str) -> bool:
        done = await self.store.unsubscribe(canonical_msisdn(subscriber), channel=channel)
        if done:
            log.info("reminders: %s opted out via %s", self.pseudonym(subscriber), channel)
        return done

    async def threshold_of(self, subscriber: str, /) -> int | None:
        sub = await self.store.subscription(canonical_msisdn(subscriber))
        if sub is None or not sub.active:
            return None
        return sub.threshold_minor // 100

    # -------------------------------------------------------------- events

    async def handle(self, event: BalanceEvent) -> str:
        """Apply one event and queue what it decided; its outcome. Raises when the
        store or outbox fails (the caller must not acknowledge the event then)."""
        applied = await self.store.apply(event)
        self.counts[applied.outcome] += 1
        for crossing in applied.pending:
            await self.dispatch(crossing)
        return applied.outcome

    async def handle_batch(self, events: Sequence[BalanceEvent]) -> list[str]:
        """`handle` for a batch, in order; events of numbers with no active reminder are
        settled by one read for the whole batch. Raises as `handle` does."""
        watched = await self.store.subscribed({e.subscriber for e in events})
        outcomes: list[str] = []
        for event in events:
            if event.subscriber in watched:
                outcomes.append(await self.handle(event))
            else:
                self.counts["unsubscribed"] += 1
                outcomes.append("unsubscribed")
        return outcomes

    async def dispatch(self, crossing: Crossing) -> str:
        """Queue, defer or drop (obsolete) one crossing; what was done."""
        now = self.clock()
        if self.quiet.is_quiet(now):
            await self.store.defer(crossing.id, self.quiet.next_open(now))
            self.counts["deferred"] += 1
            return "deferred"
        day = self.quiet.day_of(now)
        if await self.store.sent_on(crossing.subscriber, day) >= self.daily_cap:
            await self.store.defer(crossing.id, self.quiet.next_day_open(now))
            self.counts["capped"] += 1
            return "deferred"
        outbox_id = await self.messages.send(
            crossing.subscriber,
            SMS_KEY,
            {
                "balance": Money(crossing.balance_minor, crossing.currency),
                "threshold": Count(crossing.threshold_minor // 100),
                "keyword": Text(self._keyword_off),
            },
            crossing.language,
            kind="service",
            dedupe=crossing.dedupe,
        )
        await self.store.queued(crossing.id, outbox_id, day)
        self.counts["queued"] += 1
        log.info(
            "reminders: crossing %d of %s queued as outbox %d",
            crossing.id,
            self.pseudonym(crossing.subscriber),
            outbox_id,
        )
        return "queued"

    async def sweep(self, limit: int = 500) -> int:
        """One bounded batch: deferred crossings now due and decided ones left behind by
        a dead worker; each re-checked (opted out or re-armed since: obsolete). The
        number handled; call again while it equals `limit`."""
        now = self.clock()
        batch = await self.store.due(now, now - self.stuck_after, limit)
        for crossing in batch:
            if not await self.store.still_current(crossing):
                await self.store.obsolete(crossing.id)
                self.counts["obsolete"] += 1
                continue
            await self.dispatch(crossing)
        return len(batch)

    async def run_sweeper(self, every: float) -> None:
        """Sweep forever (a background task of the consumer or the app)."""
        while True:
            await asyncio.sleep(every)
            try:
                while await self.sweep() >= 500:
                    pass
            except Exception:
                log.exception("reminders: sweep failed; trying again in %.0fs", every)

    async def observe(self, subscriber: str, snapshot: BalanceSnapshot) -> None:
        """A balance hotline looked up anyway, as an event (never a stale copy)."""
        money = snapshot.main_balance
        if snapshot.stale or money is None or money.exponent != 2:
            return
        event = BalanceEvent(
            event_id=f"lookup-{uuid.uuid4().hex}",
            event_type="BalanceLookupEvent",
            at=snapshot.as_of.timestamp(),
            subscriber=canonical_msisdn(subscriber),
            balance_minor=money.minor,
            currency=money.currency,
        )
        await self.handle(event)

    async def status(self) -> dict[str, int]:
        """Counts for operators: subscribed, armed, fired, deferred, queued, obsolete,
        and the queued reminders' outbox states (sent, delivered, failed, …)."""
        counts = dict.fromkeys(("subscribed", "armed", "fired", "deferred"), 0)
        counts.update(await self.store.counts())
        rows_of = getattr(self.messages, "rows", None)
        if rows_of is not None:
            ids = await self.store.outbox_ids()
            states: Counter[str] = Counter()
            for start in range(0, len(ids), 1000):
                rows: list[dict[str, Any]] = await rows_of(ids[start : start + 1000])
                states.update(f"sms_{row['state']}" for row in rows)
            counts.update(states)
        return counts


class ObservedBalance:
    """A balance service that also hands every fresh snapshot to the reminders, in
    the background: the lookup's answer never waits for (or fails with) them."""

    def __init__(self, inner: BalanceService, reminders: Reminders) -> None:
        self.inner = inner
        self.reminders = reminders
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def fresh_for(self) -> float:
        return self.inner.fresh_for

    async def fetch(self, subscriber: str, /) -> BalanceSnapshot:
        snapshot = await self.inner.fetch(subscriber)
        task = asyncio.get_running_loop().create_task(self._observe(subscriber, snapshot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return snapshot

    async def _observe(self, subscriber: str, snapshot: BalanceSnapshot) -> None:
        try:
            await self.reminders.observe(subscriber, snapshot)
        except Exception:
            log.exception(
                "reminders: a lookup's balance for %s was not applied",
                self.reminders.pseudonym(subscriber),
            )

    async def drain(self) -> None:
        """Wait for observations in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
