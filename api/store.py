"""The API's durable records: clients, revoked tokens and the access audit.

Tables live in the one data layer (`hotline.store.db`), SQLite by default and
PostgreSQL in production, with this module's own numbered migrations (`MIGRATIONS`,
never edited once shipped). A client's secret is stored only as its SHA-256: the secret
is 256 random bits, so a fast hash is as strong as a slow one and costs nothing per
token request. Audit rows are written in batches by `AuditWriter` so a request never
waits for the disk; the batch is flushed every `interval` seconds and at shutdown (a
batch being written when the app stops is finished, not dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)

from hotline.store.db import Migration, sqlite_url
from hotline.store.threaded import ThreadedDatabase

__all__ = [
    "MIGRATIONS",
    "ApiStore",
    "AuditRow",
    "AuditWriter",
    "ClientRecord",
    "audit_table",
    "clients_table",
    "hash_secret",
    "revocations_table",
]

T = TypeVar("T")
log = logging.getLogger(__name__)

metadata = MetaData()
clients_table = Table(
    "api_clients",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("scopes", String(512), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)
revocations_table = Table(
    "api_revocations",
    metadata,
    Column("jti", String(40), primary_key=True),
    Column("revoked_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("reason", String(64), nullable=False),
)
audit_table = Table(
    "api_audit",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", Float, nullable=False),
    Column("client", String(64), nullable=False),
    Column("subscriber", String(64), nullable=True),
    Column("endpoint", String(128), nullable=False),
    Column("method", String(8), nullable=False),
    Column("status", Integer, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("jti", String(40), nullable=True),
    Column("request_id", String(64), nullable=True),
    Index("api_audit_at", "at"),
    Index("api_audit_subscriber", "subscriber", "at"),
)


def _create(conn: Connection) -> None:
    metadata.create_all(conn, tables=[clients_table, revocations_table, audit_table])


MIGRATIONS: tuple[Migration, ...] = (Migration("api-1-create", _create),)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One registered client (never its secret)."""

    id: str
    name: str
    secret_sha256: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None


class AuditRow(NamedTuple):
    """One access: who (client, pseudonymous subscriber), what, and how it ended.

    A tuple in the table's column order: one is made per request (a frozen dataclass
    cost twice as much) and a batch goes to the driver as it is."""

    at: float
    client: str
    subscriber: str | None
    endpoint: str
    method: str
    status: int
    outcome: str
    jti: str | None
    request_id: str | None


def _client(row: object) -> ClientRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return ClientRecord(
        id=m["id"],
        name=m["name"],
        secret_sha256=m["secret_sha256"],
        scopes=tuple(m["scopes"].split()),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


def _revoke(jti: str, expires_at: float, reason: str) -> Callable[[Connection], None]:
    """The work of recording a revocation (once: a second one keeps the first)."""
    t = revocations_table

    def work(conn: Connection) -> None:
        found = conn.execute(select(t.c.jti).where(t.c.jti == jti)).first()
        if found is None:
            conn.execute(
                insert(t).values(
                    jti=jti, revoked_at=time.time(), expires_at=expires_at, reason=reason
                )
            )

    return work


def _insert_audit(rows: Sequence[AuditRow]) -> Callable[[Connection], None]:
    """One multi-row INSERT of audit rows, handed to the driver's `executemany` as they
    are. SQLAlchemy's own executemany converted every row through its parameter
    processors first: half the CPU of the write, for plain floats, ints and strings."""

    def work(conn: Connection) -> None:
        compiled = insert(audit_table).compile(dialect=conn.dialect, column_keys=_AUDIT_COLUMNS)
        params: Sequence[Any]
        if not compiled.positional:  # named placeholders (psycopg's pyformat)
            params = [row._asdict() for row in rows]
        elif list(compiled.positiontup or ()) == _AUDIT_COLUMNS:
            params = rows
        else:  # pragma: no cover - a dialect that orders the columns its own way
            order = [_AUDIT_COLUMNS.index(name) for name in compiled.positiontup or ()]
            params = [tuple(row[i] for i in order) for row in rows]
        conn.exec_driver_sql(compiled.string, params)  # type: ignore[arg-type]

    return work


_AUDIT_COLUMNS = list(AuditRow._fields)


class ApiStore:
    """The API's tables; every method runs the SQL in a worker thread."""

    def __init__(self, url: str | None = None, *, path: Path = Path("var/api.sqlite3")) -> None:
        self.url = url or sqlite_url(path)
        self._database = ThreadedDatabase(self.url, MIGRATIONS, workers=4, name="api-store")

    def run_sync(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction, here (the command line's way)."""
        return self._database.run_sync(work)

    async def _run(self, work: Callable[[Connection], T]) -> T:
        return await self._database.run(work)

    async def close(self) -> None:
        await self._database.close()

    # ------------------------------------------------------------ clients

    def add_client(self, ident: str, name: str, secret: str, scopes: Sequence[str]) -> None:
        """Register a client (synchronous: the command line). Raises `ValueError` when
        the name is taken by a live client."""

        def work(conn: Connection) -> None:
            taken = conn.execute(
                select(clients_table.c.id).where(clients_table.c.name == name)
            ).first()
            if taken is not None:
                raise ValueError(f"a client named {name!r} exists (revoked ones keep their name)")
            conn.execute(
                insert(clients_table).values(
                    id=ident,
                    name=name,
                    secret_sha256=hash_secret(secret),
                    scopes=" ".join(scopes),
                    created_at=time.time(),
                    revoked_at=None,
                )
            )

        self.run_sync(work)

    def clients(self) -> list[ClientRecord]:
        rows = self.run_sync(
            lambda conn: conn.execute(select(clients_table).order_by(clients_table.c.name)).all()
        )
        return [_client(r) for r in rows]

    def revoke_client(self, name_or_id: str) -> ClientRecord | None:
        """Mark a client revoked (by name or id); the record, or None if unknown."""
        t = clients_table

        def work(conn: Connection) -> ClientRecord | None:
            row = conn.execute(
                select(t).where((t.c.name == name_or_id) | (t.c.id == name_or_id))
            ).first()
            if row is None:
                return None
            found = _client(row)
            if found.revoked_at is None:
                now = time.time()
                conn.execute(update(t).where(t.c.id == found.id).values(revoked_at=now))
                found = ClientRecord(
                    found.id, found.name, found.secret_sha256, found.scopes, found.created_at, now
                )
            return found

        return self.run_sync(work)

    async def client(self, ident: str) -> ClientRecord | None:
        t = clients_table
        row = await self._run(lambda conn: conn.execute(select(t).where(t.c.id == ident)).first())
        return _client(row) if row is not None else None

    def revoked_clients_since(self, since: float) -> list[str]:
        t = clients_table
        rows = self.run_sync(
            lambda conn: conn.execute(select(t.c.id).where(t.c.revoked_at >= since)).all()
        )
        return [r[0] for r in rows]

    # --------------------------------------------------------- revocations

    def revoke_token_sync(self, jti: str, expires_at: float, reason: str) -> None:
        self.run_sync(_revoke(jti, expires_at, reason))

    async def revoke_token(self, jti: str, expires_at: float, reason: str) -> None:
        await self._run(_revoke(jti, expires_at, reason))

    def live_revocations(self, now: float) -> list[tuple[str, float]]:
        t = revocations_table
        rows = self.run_sync(
            lambda conn: conn.execute(select(t.c.jti, t.c.expires_at).where(t.c.expires_at > now))
        )
        return [(r[0], r[1]) for r in rows]

    # --------------------------------------------------------------- audit

    async def write_audit(self, rows: Sequence[AuditRow]) -> None:
        if rows:
            await self._run(_insert_audit(rows))

    async def audit(self, limit: int = 1000) -> list[AuditRow]:
        t = audit_table
        rows = await self._run(
            lambda conn: conn.execute(select(t).order_by(t.c.id.desc()).limit(limit)).all()
        )
        return [
            AuditRow(
                at=m["at"],
                client=m["client"],
                subscriber=m["subscriber"],
                endpoint=m["endpoint"],
                method=m["method"],
                status=m["status"],
                outcome=m["outcome"],
                jti=m["jti"],
                request_id=m["request_id"],
            )
            for m in (r._mapping for r in rows)
        ][::-1]


class AuditWriter:
    """Audit rows queued by requests and written in batches by one background task.

    While the store is down the rows wait (and are written, oldest first, once it is
    back), up to `backlog` of them; then `full` is true and the pipeline refuses requests
    (503 `service_unavailable`) instead of serving what it could not audit — back-pressure,
    not dropping: every answered request keeps its row (docs/api.md, "Limits, metrics,
    audit"). The bound is soft by the requests already past the check when it filled.
    """

    def __init__(
        self,
        store: ApiStore,
        interval: float = 0.2,
        batch: int = 500,
        backlog: int = 100_000,
        chunk: int = 5_000,
    ) -> None:
        self._store = store
        self._interval = interval
        self._batch = batch
        self._backlog = backlog
        self._chunk = chunk  # rows in one transaction when a backlog is written
        self._pending: list[AuditRow] = []
        self._writing = 0  # rows of the chunk being written
        self._failing = False
        self._flushing = asyncio.Lock()  # one write at a time: the order holds on a retry
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def waiting(self) -> int:
        """Rows not yet written (queued and in the write under way)."""
        return len(self._pending) + self._writing

    @property
    def full(self) -> bool:
        """The store has been down long enough to fill the backlog: refuse requests."""
        return len(self._pending) + self._writing >= self._backlog

    def add(self, row: AuditRow) -> None:
        self._pending.append(row)
        if len(self._pending) >= self._batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def flush(self) -> None:
        """Write what is queued, oldest first; on failure keep it for the next try."""
        async with self._flushing:
            await self._write_pending()

    async def _write_pending(self) -> None:
        while self._pending:
            rows = self._pending[: self._chunk]
            del self._pending[: self._chunk]
            self._writing = len(rows)
            try:
                await self._store.write_audit(rows)
            except Exception as exc:  # the database is down: keep the rows, in order
                self._pending[:0] = rows
                if not self._failing:  # once per outage, not every interval
                    self._failing = True
                    log.warning(
                        "audit writes failing (%s): rows wait, up to %d; past that the "
                        "API answers 503",
                        type(exc).__name__,
                        self._backlog,
                        exc_info=True,
                    )
                return
            finally:
                self._writing = 0
        if self._failing:
            self._failing = False
            log.warning("audit writes resumed: the backlog is written")

    async def _loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def stop(self) -> None:
        """Write everything queued. The loop is asked to end, not cancelled: a cancel
        landing while a batch waited for the store's thread would have dropped it."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()
        if self._pending:
            log.error("audit store down at shutdown: %d rows not written", len(self._pending))
