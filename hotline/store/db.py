"""The durable store: one SQLAlchemy Core engine, schema changes as numbered migrations.

DESIGN.md §13: durable records (the SMS outbox, reminders and consent, plan orders, the
API's clients and audit) live in PostgreSQL in production and SQLite as the embedded
default, through this one layer; one `database_url` can hold them all (their tables and
migration ids never collide). `open_database(url)` makes the engine
(`sqlite:///var/hotline.sqlite3`, `postgresql+psycopg://user:pass@host/db`);
`migrate(engine, MIGRATIONS)` applies, in one transaction each, the migrations not yet
recorded in `hotline_migrations`. A migration is a small named function of a connection,
appended to a module's list and never edited once shipped (goflow's shape:
`flows/definition/migrations`).

SQLAlchemy is synchronous here; its users run it off the event loop, most through
`hotline.store.threaded.ThreadedDatabase` (a store's own worker threads, one for SQLite),
the plans journal with `asyncio.to_thread`. SQLite gets WAL and a busy timeout so the
sender and request handlers can write alongside each other; it serialises writers, which
the outbox's claims rely on for exclusivity (PostgreSQL uses `FOR UPDATE SKIP LOCKED`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.pool import StaticPool

__all__ = ["MIGRATIONS_TABLE", "Migration", "migrate", "open_database", "sqlite_url"]

metadata = MetaData()
MIGRATIONS_TABLE = Table(
    "hotline_migrations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("applied_at", Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: a unique id (`outbox-1-create`) and what it does."""

    id: str
    apply: Callable[[Connection], None]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def open_database(url: str) -> Engine:
    """An engine for `url`; a SQLite file's directory is created."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a database error's text would otherwise carry the statement's
    # values (a number, a message's amounts) into whatever logs the exception.
    options: dict[str, Any] = {}
    if url in ("sqlite://", "sqlite:///:memory:"):
        # One connection for every thread: the default pool keeps one per thread, so each
        # thread would see its own empty database, and closing them from the thread that
        # stops the store raised "SQLite objects created in a thread…" for each one.
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True, **options)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi: Any, _record: Any) -> None:
            cursor = dbapi.cursor()
            cursor.execute("PRAGMA busy_timeout=10000")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

    return engine


def _use_wal(cursor: Any, patience: float = 10.0) -> None:
    """Put the database in WAL mode (a property of the file: the first connection sets it).

    Switching answers "database is locked" at once, without the busy timeout, while
    another connection is opening the same new file (four workers starting together
    failed ~1 in 150): try again until it switches or another connection has switched it.
    """
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def migrate(engine: Engine, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations not yet recorded, in order; the ids applied now.

    Safe when several workers start at once: each migration's record is inserted
    *first*, in the transaction that applies it, so a second worker's insert waits on
    the first's (a row lock on PostgreSQL, the write lock on SQLite) and, once that
    commits, fails on the primary key — that worker skips the migration instead of
    applying it twice.
    """
    applied: list[str] = []
    _create_migrations_table(engine)
    with engine.connect() as conn:
        done = {row.id for row in conn.execute(select(MIGRATIONS_TABLE.c.id))}
    for seq, migration in enumerate(migrations):
        if migration.id in done:
            continue
        try:
            # The insert comes first: a transaction that only read before writing could
            # not wait for SQLite's write lock (its snapshot would be stale).
            with engine.begin() as conn:
                conn.execute(
                    insert(MIGRATIONS_TABLE).values(
                        id=migration.id, seq=seq, applied_at=time.time()
                    )
                )
                migration.apply(conn)
        except IntegrityError:
            continue  # another worker applied it meanwhile
        applied.append(migration.id)
    return applied


def _create_migrations_table(engine: Engine) -> None:
    """Create `hotline_migrations` unless it exists; a worker that loses the race to
    create it (a duplicate table; on PostgreSQL also its row type) finds it there."""
    try:
        with engine.begin() as conn:
            metadata.create_all(conn, tables=[MIGRATIONS_TABLE])
    except DatabaseError:
        if not inspect(engine).has_table(MIGRATIONS_TABLE.name):
            raise
