"""The reminders service: opt in/out for flows, and events in → at most one SMS out.

`Reminders.handle(event)` is the one path every event takes (JetStream, the HTTP
endpoint, a balance lookup hotline made anyway):

1. the store applies it in one transaction (`ReminderStore.apply`): stale events
   change nothing, a balance at or over the threshold re-arms, a fall below an armed
   threshold *decides* a crossing — a row unique per (subscriber, rule, generation);
2. each decided crossing is *dispatched*: inside quiet hours it is deferred
   (`due_at`); otherwise it takes one of the subscriber's daily-cap slots (a
   conditional counter update: deferred to the next day when none is left), the SMS
   is queued in the outbox with the crossing's natural key as `dedupe`, then the
   crossing is marked `queued`.

`handle_batch` does the same for a JetStream batch: one read settles every event of a
number without reminders (most of them), one transaction applies the rest.
`bundle.expiry` crossings are decided by the sweep, from the index on `due_at`.

A worker killed between 1 and 2 leaves a `decided` row: the redelivered event (it was
never acknowledged) or the sweep finds it and dispatches it again; the outbox's dedupe
key makes a second queueing a no-op. So redeliveries, duplicates, racing workers and
crashes all end with one SMS per crossing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hotline.base.privacy import Pseudonymizer, canonical_msisdn
from hotline.base.values import Count, Date, Money, Text, Value
from hotline.reminders.events import Allowance, BalanceEvent
from hotline.reminders.quiet import QuietHours
from hotline.reminders.store import (
    BALANCE_RULE,
    DATA_RULE,
    EXPIRY_RULE,
    RULES,
    VOICE_RULE,
    Crossing,
    ReminderStore,
    SlotPlan,
)

if TYPE_CHECKING:
    from hotline.balance.model import BalanceSnapshot
    from hotline.flow.services import BalanceService, MessagesService

__all__ = ["SMS_KEY", "ObservedBalance", "Reminders"]

log = logging.getLogger(__name__)

#: The catalog sentence of the reminder SMS (prompts/*.yaml `reminder.sms`), per rule.
SMS_KEY = "reminder.sms"
SMS_KEYS = {
    BALANCE_RULE: SMS_KEY,
    DATA_RULE: "reminder.sms_data",
    VOICE_RULE: "reminder.sms_voice",
    EXPIRY_RULE: "reminder.sms_expiry",
}


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
        percents: tuple[int, ...] = (10, 20),
        expiry_days: tuple[int, ...] = (1, 3, 7),
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
        self._choices = {
            BALANCE_RULE: self._thresholds,
            DATA_RULE: tuple(sorted(set(percents))),
            VOICE_RULE: tuple(sorted(set(percents))),
            EXPIRY_RULE: tuple(sorted(set(expiry_days))),
        }
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

    def choices(self, rule: str) -> tuple[int, ...]:
        """What a subscriber may choose for `rule`: 元, percent left, or days ahead."""
        if rule not in self._choices:
            raise ValueError(f"rule must be one of {', '.join(RULES)}")
        return self._choices[rule]

    async def subscribe(
        self,
        subscriber: str,
        threshold: int,
        /,
        *,
        channel: str,
        language: str,
        rule: str = BALANCE_RULE,
    ) -> None:
        """Opt in to `rule` at `threshold` (元 for `balance.low`, percent left for
        `data.low`/`voice.low`, days ahead for `bundle.expiry`)."""
        offered = self.choices(rule)
        if threshold not in offered:
            raise ValueError(f"threshold must be one of {offered}")
        await self.store.subscribe(
            canonical_msisdn(subscriber),
            threshold * 100 if rule == BALANCE_RULE else threshold,
            self.currency,
            channel=channel,
            language=language,
            rule=rule,
        )
        log.info("reminders: %s opted in to %s via %s", self.pseudonym(subscriber), rule, channel)

    async def unsubscribe(
        self, subscriber: str, /, *, channel: str, rule: str | None = None
    ) -> bool:
        """Opt out of `rule`, or of every reminder (None: what `QXTX` does)."""
        done = await self.store.unsubscribe(
            canonical_msisdn(subscriber), channel=channel, rule=rule
        )
        if done:
            log.info("reminders: %s opted out via %s", self.pseudonym(subscriber), channel)
        return done

    async def rules_of(self, subscriber: str, /) -> dict[str, int]:
        """The subscriber's active rules and thresholds (元, percent, days)."""
        found = await self.store.active_rules(canonical_msisdn(subscriber))
        return {
            rule: value // 100 if rule == BALANCE_RULE else value for rule, value in found.items()
        }

    async def threshold_of(self, subscriber: str, /) -> int | None:
        """The active `balance.low` threshold (元), or None."""
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
        """`handle` for a batch, in order: one read settles the events of numbers with
        no active reminder (most of them), one transaction applies the others, then
        the crossings they decided are dispatched. Raises as `handle` does."""
        if not events:
            return []
        watched = await self.store.subscribed({e.subscriber for e in events})
        mine = [e for e in events if e.subscriber in watched]
        applied = iter(await self.store.apply_batch(mine, self._plan()) if mine else [])
        outcomes: list[str] = []
        pending: dict[int, Crossing] = {}
        for event in events:
            if event.subscriber in watched:
                result = next(applied)
                pending.update((c.id, c) for c in result.pending)
                outcomes.append(result.outcome)
            else:
                outcomes.append("unsubscribed")
        self.counts.update(outcomes)
        await self._send_settled(list(pending.values()))
        return outcomes

    def _plan(self) -> SlotPlan:
        now = self.clock()
        quiet = self.quiet.is_quiet(now)
        return SlotPlan(
            day=None if quiet else self.quiet.day_of(now),
            cap=self.daily_cap,
            quiet_until=self.quiet.next_open(now),
            next_day=self.quiet.next_day_open(now),
        )

    async def _send_settled(self, crossings: list[Crossing]) -> None:
        """Queue the crossings `apply_batch` gave a cap slot (the deferred ones wait for
        the sweep), then mark them all `queued` in one transaction."""
        done: list[tuple[int, int]] = []
        for crossing in crossings:
            if crossing.state == "deferred":
                self.counts["deferred"] += 1
                continue
            if crossing.day is None:  # not settled (a twin's, after a conflict)
                await self.dispatch(crossing)
                continue
            done.append((crossing.id, await self._queue(crossing)))
        await self.store.queued_many(done)
        self.counts["queued"] += len(done)

    async def dispatch(self, crossing: Crossing) -> str:
        """Queue, defer or drop (obsolete) one crossing; what was done."""
        now = self.clock()
        if self.quiet.is_quiet(now):
            await self.store.defer(crossing.id, self.quiet.next_open(now))
            self.counts["deferred"] += 1
            return "deferred"
        day = self.quiet.day_of(now)
        slot = await self.store.reserve(crossing, day, self.daily_cap)
        if slot == "gone":
            return "gone"  # queued or dropped by another worker meanwhile
        if slot == "capped":
            await self.store.defer(crossing.id, self.quiet.next_day_open(now))
            self.counts["capped"] += 1
            return "deferred"
        await self.store.queued(crossing.id, await self._queue(crossing))
        self.counts["queued"] += 1
        return "queued"

    async def _queue(self, crossing: Crossing) -> int:
        """Put the crossing's SMS in the outbox (a repeat is a no-op: `dedupe`)."""
        outbox_id = await self.messages.send(
            crossing.subscriber,
            SMS_KEYS.get(crossing.rule, SMS_KEY),
            self._sms_values(crossing),
            crossing.language,
            kind="service",
            dedupe=crossing.dedupe,
        )
        log.info(
            "reminders: crossing %d of %s queued as outbox %d",
            crossing.id,
            self.pseudonym(crossing.subscriber),
            outbox_id,
        )
        return outbox_id

    def _sms_values(self, crossing: Crossing) -> dict[str, Value]:
        values: dict[str, Value] = {"keyword": Text(self._keyword_off)}
        if crossing.rule == BALANCE_RULE:
            values["balance"] = Money(crossing.balance_minor, crossing.currency)
            values["threshold"] = Count(crossing.threshold_minor // 100)
        elif crossing.rule == EXPIRY_RULE:
            ends = dt.datetime.fromtimestamp(crossing.balance_minor, self.quiet.zone)
            values["expires"] = Date(ends.date())
            values["days"] = Count(crossing.threshold_minor)
        else:
            values["percent"] = Count(crossing.balance_minor)
            values["threshold"] = Count(crossing.threshold_minor)
        return values

    async def sweep(self, limit: int = 500) -> int:
        """One bounded batch: `bundle.expiry` reminders now due (decided from the index
        on `due_at`), deferred crossings now due and decided ones left behind by a dead
        worker; each re-checked (opted out or re-armed since: obsolete). The number
        handled; call again while it equals `limit`."""
        now = self.clock()
        expiring = await self.store.decide_expiries(now, limit)
        self.counts["fired"] += len(expiring)
        for crossing in expiring:
            await self.dispatch(crossing)
        batch = await self.store.due(now, now - self.stuck_after, limit)
        for crossing in batch:
            if not await self.store.still_current(crossing):
                await self.store.obsolete(crossing.id)
                self.counts["obsolete"] += 1
                continue
            await self.dispatch(crossing)
        return max(len(batch), len(expiring))

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
            return  # a lookup without a main balance: its buckets alone are not applied
        event = BalanceEvent(
            event_id=f"lookup-{uuid.uuid4().hex}",
            event_type="BalanceLookupEvent",
            at=snapshot.as_of.timestamp(),
            subscriber=canonical_msisdn(subscriber),
            balance_minor=money.minor,
            currency=money.currency,
            allowances=_allowances(snapshot),
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


def _allowances(snapshot: BalanceSnapshot) -> tuple[Allowance, ...]:
    """The snapshot's active data and voice buckets, as an event carries them."""
    found: list[Allowance] = []
    for bucket in snapshot.buckets:
        if bucket.usage_type not in ("data", "voice") or bucket.status != "active":
            continue
        remaining = getattr(bucket.remaining, "value", None)
        total = getattr(bucket.total, "value", None) if bucket.total is not None else None
        if not isinstance(remaining, int):
            continue
        found.append(
            Allowance(
                kind=bucket.usage_type,
                bucket=bucket.id,
                remaining=remaining,
                total=total if isinstance(total, int) else None,
                valid_until=None if bucket.valid_until is None else bucket.valid_until.timestamp(),
            )
        )
    return tuple(found)


class ObservedBalance:
    """A balance service that also hands every fresh snapshot to the reminders, in
    the background: the lookup's answer never waits for (or fails with) them."""

    #: Subscribers whose last observed snapshot is remembered (least recently seen first
    #: out): a cached snapshot served again says nothing new, so it is not applied again.
    REMEMBERED = 100_000

    def __init__(self, inner: BalanceService, reminders: Reminders) -> None:
        self.inner = inner
        self.reminders = reminders
        self._tasks: set[asyncio.Task[None]] = set()
        self._observed: OrderedDict[str, float] = OrderedDict()

    @property
    def fresh_for(self) -> float:
        return self.inner.fresh_for

    async def fetch(self, subscriber: str, /) -> BalanceSnapshot:
        snapshot = await self.inner.fetch(subscriber)
        as_of = snapshot.as_of.timestamp()
        if self._observed.get(subscriber) == as_of:
            # The cache's copy again: a store read per menu view would cost ~7 % of a
            # USSD step (bench/step_cost.py) and could find nothing the last one did not.
            self._observed.move_to_end(subscriber)
            return snapshot
        self._observed[subscriber] = as_of
        if len(self._observed) > self.REMEMBERED:
            self._observed.popitem(last=False)
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
