"""The reminders' durable records: subscriptions, consent, and the crossing ledger.

Three tables, in the database `reminders.database_url` names (PostgreSQL in
production, SQLite as the embedded default), created by this module's own numbered
migrations (`hotline.store.db`):

- `reminder_subscriptions` — one row per (subscriber, rule): the threshold, language,
  whether it is active, and the *arming* state: `armed` (the value was last seen at
  or above the threshold, so a fall below is a crossing), `generation` (bumped on every
  re-arm: it names the crossing) and `last_event_at` (events older than this are stale
  and change nothing). Rules (`RULES`): `balance.low` (threshold in minor units),
  `data.low` / `voice.low` (the share of the allowance left, in percent) and
  `bundle.expiry` (days before the earliest data/voice bundle expires: `expires_at`,
  and `due_at` = when it fires, set only while armed and active — the sweep reads
  the index on `due_at`, never the table).
- `reminder_daily` — reminders queued per (subscriber, local day): the daily cap,
  taken by a conditional upsert in the same transaction that reserves the slot, so two
  workers can never both take the last one.
- `reminder_consent` — an append-only log of opt-ins and opt-outs (time, channel,
  threshold): the proof of consent, exported by `hotline reminders export`.
- `reminder_crossings` — one row per crossing, UNIQUE (subscriber, rule, generation):
  the ledger that makes "one SMS per crossing" hold across processes and restarts.
  States: `decided` → `queued` (in the SMS outbox, `outbox_id`), or `deferred`
  (quiet hours, daily cap: `due_at`) → `queued` | `obsolete` (re-armed or opted out
  meanwhile). `balance_minor` is the value the rule saw (the balance in minor units,
  the percent left, or the bundle's expiry in epoch seconds), `threshold_minor` the
  rule's threshold in the same terms; `day` is the local day whose cap slot it holds.

The subscriber's number is stored because sending needs it (the outbox addresses the
SMS); nothing here logs it.

Every change of the arming state is a conditional UPDATE on (subscriber, rule,
generation, armed), so two workers applying events for one subscriber at once cannot
both decide the same crossing; the unique key backs that up. SQLite transactions begin
IMMEDIATE (one writer at a time across processes); PostgreSQL locks the rows read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from hotline.reminders.events import BalanceEvent
from hotline.store.db import Migration, migrate, open_database, sqlite_url

__all__ = [
    "BALANCE_RULE",
    "BUNDLE_RULES",
    "DATA_RULE",
    "EXPIRY_RULE",
    "MIGRATIONS",
    "RULES",
    "VOICE_RULE",
    "Applied",
    "ConsentRecord",
    "Crossing",
    "ReminderStore",
    "SlotPlan",
    "Subscription",
    "consent_table",
    "crossings_table",
    "daily_table",
    "subscriptions_table",
]

T = TypeVar("T")
#: Execution option of a read that takes no write lock (SQLite: no BEGIN IMMEDIATE).
_READ_ONLY = "hotline_read_only"
#: The PostgreSQL advisory lock the reminders' migrations run under.
_LOCK_KEY = 0x72656D696E64
#: The main balance falls below a threshold (minor units).
BALANCE_RULE = "balance.low"
#: A data / voice allowance's remaining share falls below a percentage of its total.
DATA_RULE = "data.low"
VOICE_RULE = "voice.low"
#: The earliest data/voice bundle expires within a number of days.
EXPIRY_RULE = "bundle.expiry"
BUNDLE_RULES = (DATA_RULE, VOICE_RULE, EXPIRY_RULE)
RULES = (BALANCE_RULE, *BUNDLE_RULES)
_KIND_OF = {DATA_RULE: "data", VOICE_RULE: "voice"}
_DAY = 86400.0

metadata = MetaData()
subscriptions_table = Table(
    "reminder_subscriptions",
    metadata,
    Column("subscriber", String(32), primary_key=True),
    Column("rule", String(32), primary_key=True),
    Column("threshold_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("language", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("armed", Boolean, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("last_event_at", Float, nullable=True),
    Column("channel", String(16), nullable=False),
    Column("opted_in_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("due_at", Float, nullable=True),
)
_subscriptions_due = Index("reminder_subscriptions_due", subscriptions_table.c.due_at)
daily_table = Table(
    "reminder_daily",
    metadata,
    Column("subscriber", String(32), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("sent", Integer, nullable=False),
)
consent_table = Table(
    "reminder_consent",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("subscriber", String(32), nullable=False),
    Column("rule", String(32), nullable=False),
    Column("action", String(8), nullable=False),  # in | out
    Column("threshold_minor", BigInteger, nullable=True),
    Column("channel", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Index("reminder_consent_subscriber", "subscriber"),
)
crossings_table = Table(
    "reminder_crossings",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("subscriber", String(32), nullable=False),
    Column("rule", String(32), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("state", String(12), nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("threshold_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("language", String(16), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("decided_at", Float, nullable=False),
    Column("due_at", Float, nullable=True),
    Column("day", String(10), nullable=True),
    Column("outbox_id", BigInteger, nullable=True),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("subscriber", "rule", "generation", name="reminder_crossings_once"),
    Index("reminder_crossings_due", "state", "due_at"),
    Index("reminder_crossings_subscriber", "subscriber", "state"),
)


def _create(conn: Connection) -> None:
    metadata.create_all(conn, tables=[subscriptions_table, consent_table, crossings_table])


def _bundles(conn: Connection) -> None:
    """Bundle rules (`expires_at`, `due_at` and its index) and the daily-cap counters;
    a store created by an older `_create` gets the columns added."""
    have = {c["name"] for c in inspect(conn).get_columns("reminder_subscriptions")}
    for name in ("expires_at", "due_at"):
        if name not in have:
            kind = "FLOAT" if conn.dialect.name == "sqlite" else "DOUBLE PRECISION"
            conn.exec_driver_sql(f"ALTER TABLE reminder_subscriptions ADD COLUMN {name} {kind}")
    _subscriptions_due.create(conn, checkfirst=True)
    daily_table.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration("reminders-1-create", _create),
    Migration("reminders-2-bundles", _bundles),
)

CrossingState = Literal["decided", "queued", "deferred", "obsolete"]


@dataclass(frozen=True, slots=True)
class Subscription:
    subscriber: str
    rule: str
    threshold_minor: int
    currency: str
    language: str
    active: bool
    armed: bool
    generation: int
    channel: str
    opted_in_at: float


@dataclass(frozen=True, slots=True)
class Crossing:
    """One decided crossing: what the reminder SMS says and where it is."""

    id: int
    subscriber: str
    rule: str
    generation: int
    state: str
    balance_minor: int
    threshold_minor: int
    currency: str
    language: str
    day: str | None = None  # the local day whose cap slot it holds

    @property
    def dedupe(self) -> str:
        """The outbox's de-duplication key: the crossing's natural key."""
        return f"reminder:{self.rule}:{self.generation}:{self.subscriber}"


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    subscriber: str
    rule: str
    action: str
    threshold_minor: int | None
    channel: str
    at: float


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: `outcome` (`unsubscribed`, `stale`, `fired`, `rearmed`,
    `unchanged`) and the subscriber's crossings waiting to be queued."""

    outcome: str
    pending: tuple[Crossing, ...]


def _crossing(r: Any) -> Crossing:
    return Crossing(
        id=int(r["id"]),
        subscriber=str(r["subscriber"]),
        rule=str(r["rule"]),
        generation=int(r["generation"]),
        state=str(r["state"]),
        balance_minor=int(r["balance_minor"]),
        threshold_minor=int(r["threshold_minor"]),
        currency=str(r["currency"]),
        language=str(r["language"]),
        day=None if r["day"] is None else str(r["day"]),
    )


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """How `apply_batch` settles the crossings it finds, in its own transaction: `day`
    is the local day whose cap slots they take (None: quiet hours, all deferred to
    `quiet_until`); over the cap they wait for `next_day`."""

    day: str | None
    cap: int
    quiet_until: float
    next_day: float


def _take_slot(conn: Connection, crossing: Crossing, day: str, cap: int, sqlite_db: bool) -> bool:
    """Count one more reminder for the crossing's subscriber on `day` if under `cap`
    (a conditional upsert: racing workers serialise on the counter row), and mark the
    crossing as holding it. False: the cap is reached."""
    x, d = crossings_table, daily_table
    dialect = sqlite if sqlite_db else postgresql
    upsert = dialect.insert(d).values(subscriber=crossing.subscriber, day=day, sent=1)
    # RETURNING, not rowcount: psycopg reports -1 for an upsert's rowcount.
    taken = conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[d.c.subscriber, d.c.day],
            set_={"sent": d.c.sent + 1},
            where=d.c.sent < cap,
        ).returning(d.c.sent)
    ).first()
    if taken is None:
        return False
    conn.execute(update(x).where(x.c.id == crossing.id).values(day=day))
    return True


def _subscription(r: Any) -> Subscription:
    return Subscription(
        subscriber=str(r["subscriber"]),
        rule=str(r["rule"]),
        threshold_minor=int(r["threshold_minor"]),
        currency=str(r["currency"]),
        language=str(r["language"]),
        active=bool(r["active"]),
        armed=bool(r["armed"]),
        generation=int(r["generation"]),
        channel=str(r["channel"]),
        opted_in_at=float(r["opted_in_at"]),
    )


_ORDER = {"unsubscribed": 0, "unchanged": 1, "stale": 2, "rearmed": 3, "fired": 4}


def _max(a: str, b: str) -> str:
    """The outcome that says more, when an event touches several rules."""
    return a if _ORDER.get(a, 0) >= _ORDER.get(b, 0) else b


def _due(expires_at: float | None, days: int, now: float) -> float | None:
    """When a `bundle.expiry` reminder fires: `days` before the expiry, if still ahead."""
    if expires_at is None or expires_at <= now:
        return None
    return expires_at - days * _DAY


def _seen(sub: Subscription, ev: BalanceEvent) -> int | None:
    """What a threshold rule compares, from `ev`: the main balance (minor units) or the
    percent left of the data/voice allowance (all its live, sized buckets together);
    None when the event does not tell."""
    if sub.rule == BALANCE_RULE:
        if ev.balance_minor is None or ev.currency != sub.currency:
            return None
        return ev.balance_minor
    kind = _KIND_OF.get(sub.rule)
    live = [
        a
        for a in ev.allowances
        if a.kind == kind and a.total and (a.valid_until is None or a.valid_until > ev.at)
    ]
    if not live:
        return None
    total = sum(a.total or 0 for a in live)
    left = sum(min(a.remaining, a.total or 0) for a in live)
    return left * 100 // total


def _expiry_in(conn: Connection, ev: BalanceEvent, row: Any, same: Any) -> str:
    """`bundle.expiry` for one event: follow the earliest live bundle's expiry; a later
    one than known (renewed, bought) re-arms. Firing is the sweep's (`due_at`)."""
    s = subscriptions_table
    ends = [a.valid_until for a in ev.allowances if a.valid_until and a.valid_until > ev.at]
    if not ends:
        return "unchanged"
    expires = min(ends)
    known = row["expires_at"]
    days = int(row["threshold_minor"])
    values: dict[str, Any] = {"last_event_at": ev.at}
    outcome = "unchanged"
    if not row["armed"] and (known is None or expires > float(known)):
        values.update(
            armed=True,
            generation=s.c.generation + 1,
            expires_at=expires,
            due_at=_due(expires, days, ev.at),
        )
        outcome = "rearmed"
    elif row["armed"]:
        values.update(expires_at=expires, due_at=_due(expires, days, ev.at))
    # Disarmed and no later end: the bundle warned about (or an earlier one) — the known
    # end stays, so that bundle seen again can never re-arm the reminder.
    conn.execute(update(s).where(same).values(**values))
    return outcome


def _immediate_sqlite(engine: Engine) -> None:
    """SQLite: BEGIN IMMEDIATE, so a transaction that reads then writes holds the write
    lock from its start (two processes never both read-then-upgrade and deadlock)."""

    @event.listens_for(engine, "connect")
    def _no_implicit(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if not conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class ReminderStore:
    """Subscriptions, consent and crossings; coroutines over a worker thread."""

    def __init__(
        self,
        url: str | None = None,
        *,
        path: Path = Path("var/reminders.sqlite3"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url or sqlite_url(path)
        self.clock = clock
        self._sqlite = self.url.startswith("sqlite")
        self._engine: Engine | None = None
        self._opening = threading.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self._sqlite else 8, thread_name_prefix="reminders"
        )

    # ------------------------------------------------------------- plumbing

    def _db(self) -> Engine:
        with self._opening:
            if self._engine is None:
                engine = open_database(self.url)
                if self._sqlite:
                    _immediate_sqlite(engine)
                    migrate(engine, MIGRATIONS)
                else:
                    # Workers starting together: one migrates, the others wait for it.
                    with engine.connect() as conn:
                        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
                        try:
                            migrate(engine, MIGRATIONS)
                        finally:
                            conn.execute(
                                text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY}
                            )
                            conn.commit()
                self._engine = engine
            return self._engine

    async def _run(self, work: Callable[[Connection], T]) -> T:
        def job() -> T:
            for attempt in range(5):
                try:
                    with self._db().begin() as conn:
                        return work(conn)
                except OperationalError:
                    # SQLite past its busy timeout, PostgreSQL serialization: try again.
                    if attempt == 4:
                        raise
                    time.sleep(0.05 * (attempt + 1))
            raise AssertionError("unreachable")

        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    async def _read(self, work: Callable[[Connection], T], empty: T) -> T:
        """A read without a write lock. Before the embedded SQLite file exists the answer
        is `empty`: an app nobody subscribed in never creates it (as the outbox)."""
        if self._sqlite and self._engine is None and not self._file_exists():
            return empty

        def job() -> T:
            with self._db().connect().execution_options(**{_READ_ONLY: True}) as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def _file_exists(self) -> bool:
        path = self.url.removeprefix("sqlite:///")
        return path == ":memory:" or Path(path).exists()

    async def open(self) -> None:
        """Open and migrate now (a readiness check: the database answers)."""
        await self._run(lambda conn: conn.execute(select(1)).scalar())

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._engine is not None:
            self._engine.dispose()

    def _lock(self, query: Any) -> Any:
        return query if self._sqlite else query.with_for_update()

    # ------------------------------------------------------ subscriptions

    async def subscribe(
        self,
        subscriber: str,
        threshold_minor: int,
        currency: str,
        *,
        channel: str,
        language: str,
        rule: str = BALANCE_RULE,
    ) -> None:
        """Opt in (or change the threshold): armed afresh under a new generation, and
        the consent logged. `threshold_minor` is in the rule's terms (see `RULES`)."""
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}")
        now = self.clock()
        s = subscriptions_table

        def work(conn: Connection) -> None:
            row = (
                conn.execute(
                    self._lock(select(s).where(s.c.subscriber == subscriber, s.c.rule == rule))
                )
                .mappings()
                .first()
            )
            values: dict[str, Any] = {
                "threshold_minor": threshold_minor,
                "currency": currency,
                "language": language,
                "active": True,
                "armed": True,
                "channel": channel,
                "opted_in_at": now,
                "updated_at": now,
            }
            if rule == EXPIRY_RULE:
                expires = None if row is None else row["expires_at"]
                values["due_at"] = _due(expires, threshold_minor, now)
            if row is None:
                conn.execute(
                    insert(s).values(subscriber=subscriber, rule=rule, generation=1, **values)
                )
            else:
                conn.execute(
                    update(s)
                    .where(s.c.subscriber == subscriber, s.c.rule == rule)
                    .values(generation=s.c.generation + 1, **values)
                )
            conn.execute(
                insert(consent_table).values(
                    subscriber=subscriber,
                    rule=rule,
                    action="in",
                    threshold_minor=threshold_minor,
                    channel=channel,
                    at=now,
                )
            )

        await self._run(work)

    async def unsubscribe(
        self, subscriber: str, *, channel: str, rule: str | None = BALANCE_RULE
    ) -> bool:
        """Opt out of `rule` (None: every rule); False if nothing was active (nothing
        logged). Each rule turned off is one consent record."""
        now = self.clock()
        s = subscriptions_table

        def work(conn: Connection) -> bool:
            mine = and_(s.c.subscriber == subscriber, s.c.active.is_(True))
            if rule is not None:
                mine = and_(mine, s.c.rule == rule)
            rules = [str(r.rule) for r in conn.execute(self._lock(select(s.c.rule).where(mine)))]
            if not rules:
                return False
            conn.execute(update(s).where(mine).values(active=False, due_at=None, updated_at=now))
            conn.execute(
                insert(consent_table),
                [
                    {
                        "subscriber": subscriber,
                        "rule": each,
                        "action": "out",
                        "threshold_minor": None,
                        "channel": channel,
                        "at": now,
                    }
                    for each in sorted(rules)
                ],
            )
            return True

        return await self._run(work)

    async def active_rules(self, subscriber: str) -> dict[str, int]:
        """The subscriber's active rules and their thresholds (`RULES`' terms)."""
        s = subscriptions_table

        def work(conn: Connection) -> dict[str, int]:
            rows = conn.execute(
                select(s.c.rule, s.c.threshold_minor).where(
                    s.c.subscriber == subscriber, s.c.active.is_(True)
                )
            )
            return {str(r.rule): int(r.threshold_minor) for r in rows}

        return await self._read(work, {})

    async def subscription(self, subscriber: str, rule: str = BALANCE_RULE) -> Subscription | None:
        s = subscriptions_table

        def work(conn: Connection) -> Subscription | None:
            row = (
                conn.execute(select(s).where(s.c.subscriber == subscriber, s.c.rule == rule))
                .mappings()
                .first()
            )
            return None if row is None else _subscription(row)

        return await self._read(work, None)

    async def consent(self, subscriber: str | None = None) -> list[ConsentRecord]:
        """The consent log (one subscriber's, or everyone's), oldest first."""
        c = consent_table

        def work(conn: Connection) -> list[ConsentRecord]:
            query = select(c).order_by(c.c.id)
            if subscriber is not None:
                query = query.where(c.c.subscriber == subscriber)
            return [
                ConsentRecord(
                    subscriber=str(r["subscriber"]),
                    rule=str(r["rule"]),
                    action=str(r["action"]),
                    threshold_minor=None
                    if r["threshold_minor"] is None
                    else int(r["threshold_minor"]),
                    channel=str(r["channel"]),
                    at=float(r["at"]),
                )
                for r in conn.execute(query).mappings()
            ]

        return await self._read(work, [])

    # -------------------------------------------------------------- events

    async def subscribed(self, subscribers: set[str]) -> set[str]:
        """Which of `subscribers` have an active reminder: one indexed read for a whole
        batch of events (most events are for numbers nobody subscribed)."""
        s = subscriptions_table
        wanted = sorted(subscribers)

        def work(conn: Connection) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(s.c.subscriber)
                    .where(s.c.subscriber.in_(wanted[start : start + 500]), s.c.active.is_(True))
                    .distinct()
                )
                found.update(str(r.subscriber) for r in rows)
            return found

        return await self._read(work, set())

    async def apply(self, ev: BalanceEvent) -> Applied:
        """Apply one balance event to the subscriber's active rules, in one transaction:
        re-arm where the value is at or over the threshold, decide a crossing where it
        fell below an armed one. Returns the subscriber's crossings still `decided`
        (this event's, or one a killed worker left behind)."""
        if not await self.subscribed({ev.subscriber}):
            return Applied("unsubscribed", ())  # most events: one index read, no lock
        return (await self.apply_batch([ev]))[0]

    async def apply_batch(
        self, events: list[BalanceEvent], plan: SlotPlan | None = None
    ) -> list[Applied]:
        """`apply` for events of subscribed numbers, all in one transaction (the rows
        locked up front in one sorted read, so two workers cannot deadlock); each
        `Applied` carries every crossing of its subscriber still `decided`. With a
        `plan`, those crossings are also settled in the same transaction: each takes a
        daily-cap slot (`day` set) or is deferred (state `deferred`) — one commit for
        the whole batch instead of one per crossing."""
        now = self.clock()
        s, x = subscriptions_table, crossings_table
        who = sorted({ev.subscriber for ev in events})

        def work(conn: Connection) -> list[Applied]:
            if not self._sqlite:
                conn.execute(
                    select(s.c.subscriber)
                    .where(s.c.subscriber.in_(who), s.c.active.is_(True))
                    .order_by(s.c.subscriber, s.c.rule)
                    .with_for_update()
                ).all()
            outcomes = [self._apply_in(conn, ev, now) for ev in events]
            pending: dict[str, list[Crossing]] = {}
            for r in conn.execute(
                select(x).where(x.c.subscriber.in_(who), x.c.state == "decided").order_by(x.c.id)
            ).mappings():
                crossing = _crossing(r)
                if plan is not None:
                    crossing = self._settle(conn, crossing, plan, now)
                pending.setdefault(crossing.subscriber, []).append(crossing)
            return [
                Applied(outcome, tuple(pending.get(ev.subscriber, ())))
                for ev, outcome in zip(events, outcomes, strict=True)
            ]

        try:
            return await self._run(work)
        except IntegrityError:
            # A twin decided one of these crossings first (the unique key): the batch
            # rolled back; apply the events one by one so each twin costs only itself.
            if len(events) == 1:
                return [await self.apply_nothing(events[0].subscriber)]
            return [(await self.apply_batch([ev], plan))[0] for ev in events]

    def _settle(self, conn: Connection, crossing: Crossing, plan: SlotPlan, now: float) -> Crossing:
        x = crossings_table
        if plan.day is not None and (
            crossing.day == plan.day or _take_slot(conn, crossing, plan.day, plan.cap, self._sqlite)
        ):
            return dataclasses.replace(crossing, day=plan.day)
        due = plan.quiet_until if plan.day is None else plan.next_day
        conn.execute(
            update(x)
            .where(x.c.id == crossing.id)
            .values(state="deferred", due_at=due, updated_at=now)
        )
        return dataclasses.replace(crossing, state="deferred")

    def _apply_in(self, conn: Connection, ev: BalanceEvent, now: float) -> str:
        """One event against the subscriber's active rows, inside the caller's
        transaction; its outcome (`unsubscribed`, `stale`, `fired`, `rearmed`,
        `unchanged`)."""
        s, x = subscriptions_table, crossings_table
        rows = (
            conn.execute(select(s).where(s.c.subscriber == ev.subscriber, s.c.active.is_(True)))
            .mappings()
            .all()
        )
        outcome = "unsubscribed" if not rows else "unchanged"
        for row in rows:
            sub = _subscription(row)
            last = row["last_event_at"]
            if last is not None and ev.at < float(last):
                outcome = "stale"
                continue
            same = and_(
                s.c.subscriber == sub.subscriber,
                s.c.rule == sub.rule,
                s.c.generation == sub.generation,
                s.c.armed.is_(sub.armed),
            )
            if sub.rule == EXPIRY_RULE:
                outcome = _max(outcome, _expiry_in(conn, ev, row, same))
                continue
            seen = _seen(sub, ev)
            if seen is None:
                continue  # the event says nothing this rule reads
            below = seen < sub.threshold_minor
            if below and sub.armed:
                changed = conn.execute(
                    update(s).where(same).values(armed=False, last_event_at=ev.at)
                ).rowcount
                if changed == 1:
                    conn.execute(
                        insert(x).values(
                            subscriber=sub.subscriber,
                            rule=sub.rule,
                            generation=sub.generation,
                            state="decided",
                            balance_minor=seen,
                            threshold_minor=sub.threshold_minor,
                            currency=sub.currency,
                            language=sub.language,
                            event_id=ev.event_id,
                            decided_at=now,
                            updated_at=now,
                        )
                    )
                    outcome = "fired"
            elif not below and not sub.armed:
                conn.execute(
                    update(s)
                    .where(same)
                    .values(armed=True, generation=s.c.generation + 1, last_event_at=ev.at)
                )
                outcome = _max(outcome, "rearmed")
            else:
                conn.execute(update(s).where(same).values(last_event_at=ev.at))
        return outcome

    async def apply_nothing(self, subscriber: str) -> Applied:
        x = crossings_table

        def work(conn: Connection) -> Applied:
            rows = conn.execute(
                select(x).where(x.c.subscriber == subscriber, x.c.state == "decided")
            ).mappings()
            return Applied("unchanged", tuple(_crossing(r) for r in rows))

        return await self._read(work, Applied("unchanged", ()))

    async def decide_expiries(self, now: float, limit: int) -> list[Crossing]:
        """Decide up to `limit` `bundle.expiry` crossings now due, earliest first: one
        bounded read of the index on `due_at` (only armed, active rows have one), a
        conditional update per row, in one transaction. The crossings decided."""
        s, x = subscriptions_table, crossings_table

        def work(conn: Connection) -> list[Crossing]:
            query = (
                select(s)
                .where(s.c.due_at <= now, s.c.rule == EXPIRY_RULE)
                .order_by(s.c.due_at)
                .limit(limit)
            )
            if not self._sqlite:
                query = query.with_for_update(skip_locked=True)  # another sweeper's rows
            decided: list[int] = []
            for row in conn.execute(query).mappings().all():
                sub = _subscription(row)
                if row["expires_at"] is None or float(row["expires_at"]) <= now:
                    # Expired before the sweep came (a sweep outage): too late to warn.
                    conn.execute(
                        update(s)
                        .where(s.c.subscriber == sub.subscriber, s.c.rule == sub.rule)
                        .values(due_at=None)
                    )
                    continue
                changed = conn.execute(
                    update(s)
                    .where(
                        s.c.subscriber == sub.subscriber,
                        s.c.rule == sub.rule,
                        s.c.generation == sub.generation,
                        s.c.armed.is_(True),
                        s.c.active.is_(True),
                    )
                    .values(armed=False, due_at=None, updated_at=now)
                ).rowcount
                if changed != 1:
                    continue
                ident = conn.execute(
                    insert(x)
                    .values(
                        subscriber=sub.subscriber,
                        rule=sub.rule,
                        generation=sub.generation,
                        state="decided",
                        balance_minor=int(row["expires_at"] or 0),
                        threshold_minor=sub.threshold_minor,
                        currency=sub.currency,
                        language=sub.language,
                        event_id=f"sweep-{int(now)}",
                        decided_at=now,
                        updated_at=now,
                    )
                    .returning(x.c.id)
                ).scalar_one()
                decided.append(int(ident))
            if not decided:
                return []
            rows = conn.execute(select(x).where(x.c.id.in_(decided)).order_by(x.c.id))
            return [_crossing(r) for r in rows.mappings()]

        return await self._run(work)

    # ----------------------------------------------------------- crossings

    async def queued_many(self, done: list[tuple[int, int]]) -> None:
        """`queued` for (crossing id, outbox id) pairs, in one transaction."""
        x = crossings_table
        now = self.clock()

        def work(conn: Connection) -> None:
            for ident, outbox_id in done:
                conn.execute(
                    update(x)
                    .where(x.c.id == ident, x.c.state.in_(("decided", "deferred")))
                    .values(state="queued", outbox_id=outbox_id, updated_at=now)
                )

        if done:
            await self._run(work)

    async def queued(self, ident: int, outbox_id: int, day: str | None = None) -> None:
        """The crossing's SMS is in the outbox."""
        extra = {} if day is None else {"day": day}
        await self._set(
            ident, ("decided", "deferred"), state="queued", outbox_id=outbox_id, **extra
        )

    async def defer(self, ident: int, due_at: float) -> None:
        await self._set(ident, ("decided", "deferred"), state="deferred", due_at=due_at)

    async def obsolete(self, ident: int) -> None:
        await self._set(ident, ("decided", "deferred"), state="obsolete")

    async def _set(self, ident: int, states: tuple[str, ...], **values: Any) -> None:
        x = crossings_table
        now = self.clock()

        def work(conn: Connection) -> None:
            conn.execute(
                update(x)
                .where(x.c.id == ident, x.c.state.in_(states))
                .values(updated_at=now, **values)
            )

        await self._run(work)

    async def reserve(self, crossing: Crossing, day: str, cap: int) -> str:
        """Take one of the subscriber's `cap` slots of local `day` for this crossing, in
        one transaction: `ok` (taken now, or already held by it — a retry after a
        crash), `capped` (all taken), `gone` (queued or obsolete meanwhile). The counter
        row is updated only while under the cap, so racing workers never exceed it."""
        x = crossings_table

        def work(conn: Connection) -> str:
            row = conn.execute(
                self._lock(select(x.c.state, x.c.day).where(x.c.id == crossing.id))
            ).first()
            if row is None or row.state not in ("decided", "deferred"):
                return "gone"
            if row.day == day:
                return "ok"
            return "ok" if _take_slot(conn, crossing, day, cap, self._sqlite) else "capped"

        return await self._run(work)

    async def sent_on(self, subscriber: str, day: str) -> int:
        """Cap slots taken for `subscriber` on local day `day`."""
        d = daily_table

        def work(conn: Connection) -> int:
            got = conn.execute(
                select(d.c.sent).where(d.c.subscriber == subscriber, d.c.day == day)
            ).scalar()
            return int(got or 0)

        return await self._read(work, 0)

    async def due(self, now: float, stuck_before: float, limit: int) -> list[Crossing]:
        """A bounded batch of crossings to (re)consider: deferred ones now due, and
        decided ones nobody queued since `stuck_before` (a worker died meanwhile)."""
        x = crossings_table

        def work(conn: Connection) -> list[Crossing]:
            deferred = (
                select(x)
                .where(x.c.state == "deferred", x.c.due_at <= now)
                .order_by(x.c.due_at)
                .limit(limit)
            )
            stuck = (
                select(x)
                .where(x.c.state == "decided", x.c.decided_at <= stuck_before)
                .order_by(x.c.id)
                .limit(limit)
            )
            rows = [*conn.execute(deferred).mappings(), *conn.execute(stuck).mappings()]
            return [_crossing(r) for r in rows[:limit]]

        return await self._read(work, [])

    async def still_current(self, crossing: Crossing) -> bool:
        """Whether a waiting crossing still stands: the subscription is active and has
        not been re-armed (or re-subscribed) since it was decided."""
        s = subscriptions_table

        def work(conn: Connection) -> bool:
            row = conn.execute(
                select(s.c.active, s.c.armed, s.c.generation).where(
                    s.c.subscriber == crossing.subscriber, s.c.rule == crossing.rule
                )
            ).first()
            return (
                row is not None
                and bool(row.active)
                and not bool(row.armed)
                and int(row.generation) == crossing.generation
            )

        return await self._read(work, False)

    async def counts(self) -> dict[str, int]:
        """`subscribed`, `armed`, `fired` and crossings per state."""
        s, x = subscriptions_table, crossings_table

        def work(conn: Connection) -> dict[str, int]:
            out = {
                "subscribed": int(
                    conn.execute(select(func.count()).where(s.c.active.is_(True))).scalar_one()
                ),
                "armed": int(
                    conn.execute(
                        select(func.count()).where(s.c.active.is_(True), s.c.armed.is_(True))
                    ).scalar_one()
                ),
                "fired": int(conn.execute(select(func.count()).select_from(x)).scalar_one()),
            }
            for state, count in conn.execute(select(x.c.state, func.count()).group_by(x.c.state)):
                out[str(state)] = int(count)
            return out

        return await self._read(work, {})

    async def outbox_ids(self, limit: int = 100_000) -> list[int]:
        """Outbox ids of queued reminders, newest first (for delivery counts)."""
        x = crossings_table

        def work(conn: Connection) -> list[int]:
            rows = conn.execute(
                select(x.c.outbox_id)
                .where(x.c.state == "queued", x.c.outbox_id.is_not(None))
                .order_by(x.c.id.desc())
                .limit(limit)
            )
            return [int(r.outbox_id) for r in rows]

        return await self._read(work, [])

    async def crossings(self, subscriber: str | None = None) -> list[dict[str, Any]]:
        """Crossing rows as stored (tests and operators)."""
        x = crossings_table

        def work(conn: Connection) -> list[dict[str, Any]]:
            query = select(x).order_by(x.c.id)
            if subscriber is not None:
                query = query.where(x.c.subscriber == subscriber)
            return [dict(r) for r in conn.execute(query).mappings()]

        return await self._read(work, [])
