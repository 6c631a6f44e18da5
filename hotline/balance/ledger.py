"""The embedded SQLite ledger: the default provider and `hotline ledger` (DESIGN.md §4, §8).

Why `sqlite3` + `asyncio.to_thread` rather than aiosqlite: a lookup is one indexed read
of well under a millisecond; aiosqlite would run the very same stdlib driver on its own
thread and add a dependency without adding anything. One connection (WAL, so the CLI
can write while a server reads) is shared under a lock; reads run off the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hotline.balance.model import BalanceSnapshot, Bucket, Quantity
from hotline.balance.msisdn import canonical_msisdn
from hotline.base.errors import ConfigError, UpstreamNotFound, UpstreamUnavailable
from hotline.base.privacy import Pseudonymizer
from hotline.base.values import Money

__all__ = [
    "BUCKET_UNITS",
    "DEMO_SUBSCRIBERS",
    "LOCAL_TZ",
    "LedgerBucket",
    "LedgerProvider",
    "LedgerRecord",
    "LedgerStore",
    "demo_subscribers",
    "open_ledger",
]

LOCAL_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
BucketKind = Literal["data", "voice", "sms"]
BUCKET_UNITS: dict[str, Literal["byte", "second", "message"]] = {
    "data": "byte",
    "voice": "second",
    "sms": "message",
}
_BUCKET_NAMES = {"data": "国内通用流量", "voice": "国内通话", "sms": "短信"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber (
    msisdn     TEXT PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'barred')),
    main_minor INTEGER NOT NULL,
    currency   TEXT NOT NULL DEFAULT 'CNY',
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bucket (
    msisdn      TEXT NOT NULL REFERENCES subscriber (msisdn) ON DELETE CASCADE,
    usage_type  TEXT NOT NULL CHECK (usage_type IN ('data', 'voice', 'sms')),
    remaining   INTEGER NOT NULL CHECK (remaining >= 0),
    valid_until TEXT,
    PRIMARY KEY (msisdn, usage_type)
);
"""


@dataclass(frozen=True, slots=True)
class LedgerBucket:
    """One package: remaining amount in base units (bytes, seconds, messages)."""

    usage_type: BucketKind
    remaining: int
    valid_until: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One subscriber row as the ledger holds it."""

    msisdn: str
    status: Literal["active", "suspended", "barred"]
    main_minor: int
    currency: str = "CNY"
    buckets: tuple[LedgerBucket, ...] = ()
    updated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def _end_of_month(today: dt.date) -> dt.datetime:
    first_next = (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    last = first_next - dt.timedelta(days=1)
    return dt.datetime.combine(last, dt.time(23, 59, 59), LOCAL_TZ).astimezone(dt.UTC)


GB = 1024**3
MB = 1024**2

# (msisdn, status, main_minor, [(kind, remaining, expires_end_of_month)])
DEMO_SUBSCRIBERS: tuple[tuple[str, str, int, tuple[tuple[BucketKind, int, bool], ...]], ...] = (
    (
        "13800138000",
        "active",
        1250,
        (("data", 3 * GB, True), ("voice", 200 * 60, True), ("sms", 100, True)),
    ),
    ("13800138001", "active", 5, (("data", 20 * MB, True),)),
    ("13800138002", "active", -320, (("voice", 30 * 60, True),)),
    ("13800138003", "suspended", 0, ()),
    (
        "13800138004",
        "active",
        10_000_001,
        (("data", 100 * GB, False), ("voice", 1000 * 60, False), ("sms", 500, False)),
    ),
    ("13800138005", "active", 3000, ()),
)


def demo_subscribers(today: dt.date) -> list[LedgerRecord]:
    """The demo rows; monthly packages expire at the end of `today`'s month (UTC+8)."""
    until = _end_of_month(today)
    return [
        LedgerRecord(
            msisdn=msisdn,
            status=status,  # type: ignore[arg-type]
            main_minor=minor,
            buckets=tuple(
                LedgerBucket(kind, amount, until if monthly else None)
                for kind, amount, monthly in buckets
            ),
        )
        for msisdn, status, minor, buckets in DEMO_SUBSCRIBERS
    ]


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()


def _parse(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text).astimezone(dt.UTC)


class LedgerStore:
    """Synchronous access to the ledger file; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path, *, seed_demo: bool = False, today: dt.date | None = None):
        self.path = path
        new = str(path) == ":memory:" or not path.exists()
        if new and str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            if str(path) != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise UpstreamUnavailable(f"ledger {path}: {exc}") from exc
        if new and seed_demo:
            for record in demo_subscribers(today or dt.datetime.now(LOCAL_TZ).date()):
                self.put(record)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def put(self, record: LedgerRecord) -> None:
        """Insert or replace a subscriber and all their buckets."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO subscriber (msisdn, status, main_minor, currency, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (msisdn) DO UPDATE SET "
                "status = excluded.status, main_minor = excluded.main_minor, "
                "currency = excluded.currency, updated_at = excluded.updated_at",
                (
                    record.msisdn,
                    record.status,
                    record.main_minor,
                    record.currency,
                    _iso(record.updated_at),
                ),
            )
            db.execute("DELETE FROM bucket WHERE msisdn = ?", (record.msisdn,))
            db.executemany(
                "INSERT INTO bucket (msisdn, usage_type, remaining, valid_until) "
                "VALUES (?, ?, ?, ?)",
                [
                    (record.msisdn, b.usage_type, b.remaining, _iso(b.valid_until))
                    for b in record.buckets
                ],
            )

    def get(self, msisdn: str) -> LedgerRecord | None:
        """The record of a canonical MSISDN, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT msisdn, status, main_minor, currency, updated_at FROM subscriber "
                "WHERE msisdn = ?",
                (msisdn,),
            ).fetchone()
            if row is None:
                return None
            rows = self._db.execute(
                "SELECT usage_type, remaining, valid_until FROM bucket WHERE msisdn = ? "
                "ORDER BY CASE usage_type WHEN 'data' THEN 0 WHEN 'voice' THEN 1 ELSE 2 END",
                (msisdn,),
            ).fetchall()
        return LedgerRecord(
            msisdn=row[0],
            status=row[1],
            main_minor=row[2],
            currency=row[3],
            updated_at=_parse(row[4]) or dt.datetime.now(dt.UTC),
            buckets=tuple(
                LedgerBucket(kind, amount, _parse(until)) for kind, amount, until in rows
            ),
        )

    def all(self) -> list[LedgerRecord]:
        """Every subscriber, ordered by number."""
        with self._lock:
            numbers = [
                r[0]
                for r in self._db.execute(
                    "SELECT msisdn FROM subscriber ORDER BY msisdn"
                ).fetchall()
            ]
        return [rec for n in numbers if (rec := self.get(n)) is not None]


def snapshot_of(record: LedgerRecord, token: str, now: dt.datetime) -> BalanceSnapshot:
    """The normalized view of a ledger row, read at `now`."""
    buckets = tuple(
        Bucket(
            id=f"ledger-{b.usage_type}",
            usage_type=b.usage_type,
            name=_BUCKET_NAMES[b.usage_type],
            remaining=Quantity(value=b.remaining, unit=BUCKET_UNITS[b.usage_type]),
            status="expired" if b.valid_until is not None and b.valid_until < now else "active",
            valid_until=b.valid_until,
        )
        for b in record.buckets
    )
    return BalanceSnapshot(
        subscriber_token=token,
        account_status=record.status,
        payment_type="prepaid",
        main_balance=Money(record.main_minor, record.currency),
        buckets=buckets,
        as_of=now,
        fetched_at=now,
        provider="ledger",
    )


def open_ledger(path: Path, *, seed_demo: bool) -> LedgerStore:
    """The configured ledger; a file that cannot be opened is a one-line `ConfigError`."""
    try:
        return LedgerStore(path, seed_demo=seed_demo)
    except (OSError, UpstreamUnavailable) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).removeprefix(f"ledger {path}: ")
        raise ConfigError(
            f"config balance.ledger_path (HOTLINE_BALANCE__LEDGER_PATH): cannot open {path}: "
            f"{reason}"
        ) from exc


class LedgerProvider:
    """`BalanceProvider` over the SQLite ledger."""

    name = "ledger"

    def __init__(
        self,
        store: LedgerStore,
        pseudonym: Pseudonymizer,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._store = store
        self._pseudonym = pseudonym
        self._now = now

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        try:
            canonical = canonical_msisdn(msisdn)
        except ValueError as exc:
            raise UpstreamNotFound("not a phone number") from exc
        try:
            record = await asyncio.to_thread(self._store.get, canonical)
        except sqlite3.Error as exc:
            raise UpstreamUnavailable(f"ledger read failed: {type(exc).__name__}") from exc
        if record is None:
            raise UpstreamNotFound("subscriber not in the ledger")
        return snapshot_of(record, self._pseudonym(canonical), self._now())

    async def close(self) -> None:
        await asyncio.to_thread(self._store.close)
