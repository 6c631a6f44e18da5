"""The SMS outbox: outgoing messages stored durably until the SMSC has them.

`Outbox.send(subscriber, key, values, language, kind=…)` is the messages service
(`hotline.flow.services.MessagesService`): it stores the message — catalog key, typed
values and language, not text: the SMS channel words it when it sends — and returns its
id. A sender (the SMS channel's, `sms.sender`) delivers the rows:

    queued ──claim──▶ claimed ──begin──▶ sending ──▶ sent ──report──▶ delivered | failed
       ▲                 │ lease ends        │ lease ends
       └─────────────────┘ (never submitted) └──▶ doubt ──report──▶ sent/delivered/failed
                                                     └─ grace ends ─▶ failed (not resent)

A claim takes up to N due rows for one owner with a lease, in one statement (SQLite
serialises writers; PostgreSQL skips rows another worker holds). `begin` moves one row
to `sending` (committed) right before its submission, so after a crash a row is either
surely not submitted (`claimed`: queued again) or *in doubt* (`sending`: maybe
submitted). An in-doubt row is resolved by a delivery report carrying its id, and
otherwise never sent again: a duplicate SMS (a second OTP, a second receipt) is worse
than a flagged one, and `doubt` rows are counted for operators. Transient refusals are
retried with exponential backoff up to `max_attempts`; permanent ones fail at once.

Every change of state is told to the `observers` (`(event)` with event one of
`EVENTS`: the SMS channel counts them as metrics). `purge` deletes messages finished
(delivered or failed) longer ago than a given age, and their parts.

All methods are coroutines running the synchronous SQLAlchemy work in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson
from sqlalchemy import (
    CTE,
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from hotline.base.values import Value, decode_value, encode_value
from hotline.store.db import Migration, sqlite_url
from hotline.store.threaded import ThreadedDatabase

__all__ = [
    "ALL_PARTS",
    "EVENTS",
    "MIGRATIONS",
    "Accepted",
    "MessageKind",
    "Outbox",
    "OutboxRow",
    "ReportState",
    "outbox_table",
]

MessageKind = Literal["service", "otp", "receipt"]
ReportState = Literal["delivered", "failed", "accepted", "buffered"]
KINDS: tuple[MessageKind, ...] = ("service", "otp", "receipt")
#: What observers are told: a message queued, submitted (`sent`), queued again after a
#: transient refusal (`retried`), `failed`, `delivered`, in `doubt` after a crash,
#: `abandoned` (in doubt too long; failed, not resent), `requeued` (claimed, never sent).
EVENTS = ("queued", "sent", "retried", "failed", "delivered", "doubt", "abandoned", "requeued")
T = TypeVar("T")

metadata = MetaData()
outbox_table = Table(
    "sms_outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("created_at", Float, nullable=False),
    Column("subscriber", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key", String(128), nullable=False),
    Column("vals", Text, nullable=False),
    Column("language", String(16), nullable=False),
    Column("dedupe", String(128), nullable=True, unique=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("due_at", Float, nullable=False),
    Column("lease_owner", String(40), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("smsc_ref", String(64), nullable=True),
    Column("last_error", String(200), nullable=True),
    Column("sent_at", Float, nullable=True),
    Column("done_at", Float, nullable=True),
    Index("sms_outbox_due", "state", "due_at"),
)
#: SMPP receipts name the SMSC's id only: found by it without a scan.
smsc_ref_index = Index("sms_outbox_smsc_ref", outbox_table.c.smsc_ref)
#: The parts of a message sent in several (their SMSC ids and what each receipt said):
#: a long message is delivered when every part is, failed when one part failed.
parts_table = Table(
    "sms_outbox_parts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("row_id", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("smsc_ref", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Index("sms_outbox_parts_ref", "smsc_ref"),
    Index("sms_outbox_parts_row", "row_id"),
)


def _create_outbox(conn: Connection) -> None:
    metadata.create_all(conn, tables=[outbox_table])


def _add_parts(conn: Connection) -> None:
    smsc_ref_index.create(conn, checkfirst=True)
    parts_table.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration("outbox-1-create", _create_outbox),
    Migration("outbox-2-parts", _add_parts),
)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A row the SMSC took: the SMSC's id (its first part's) and, for a message sent in
    several parts, one entry per part — the part's SMSC id, or "" when the gateway names
    parts only in their delivery reports (Kannel: each part's report brings its id)."""

    id: int
    smsc_ref: str = ""
    parts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One claimed message, as the sender needs it."""

    id: int
    subscriber: str
    kind: MessageKind
    key: str
    values: dict[str, Value]
    language: str
    attempts: int


class Outbox:
    """The durable outbox; `send` is the messages service actions use."""

    def __init__(
        self,
        url: str | None = None,
        *,
        path: Path = Path("var/outbox.sqlite3"),
        max_attempts: int = 6,
        retry_base: float = 2.0,
        retry_max: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url or sqlite_url(path)
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.clock = clock
        # Opened on first use: an app that never sends an SMS never creates the file.
        self._database = ThreadedDatabase(self.url, MIGRATIONS, workers=8, name="outbox")
        self.wakeup = asyncio.Event()
        self.observers: list[Callable[[str], None]] = []

    def _tell(self, event: str, times: int = 1) -> None:
        for observer in self.observers:
            for _ in range(times):
                observer(event)

    # ------------------------------------------------------------- plumbing

    async def _run(self, work: Callable[[Connection], T]) -> T:
        return await self._database.run(work)

    async def close(self) -> None:
        await self._database.close()

    # ------------------------------------------------------------ the service

    async def send(
        self,
        subscriber: str,
        key: str,
        values: Mapping[str, Value],
        language: str,
        *,
        kind: MessageKind = "service",
        dedupe: str | None = None,
    ) -> int:
        """Queue one message; its outbox id. With `dedupe` (an order id, say), a second
        call with the same value queues nothing and returns the first message's id."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        vals = orjson.dumps({k: encode_value(v) for k, v in values.items()}).decode()
        now = self.clock()

        new = False

        def work(conn: Connection) -> int:
            nonlocal new
            if dedupe is not None:
                found = conn.execute(
                    select(outbox_table.c.id).where(outbox_table.c.dedupe == dedupe)
                ).scalar()
                if found is not None:
                    return int(found)
            result = conn.execute(
                insert(outbox_table)
                .values(
                    created_at=now,
                    subscriber=subscriber,
                    kind=kind,
                    key=key,
                    vals=vals,
                    language=language,
                    dedupe=dedupe,
                    state="queued",
                    attempts=0,
                    due_at=now,
                )
                .returning(outbox_table.c.id)
            )
            new = True
            return int(result.scalar_one())

        try:
            ident = await self._run(work)
        except IntegrityError:
            if dedupe is None:
                raise
            ident = await self._run(work)  # a concurrent twin inserted it first
        if new:
            self._tell("queued")
        self.wakeup.set()
        return ident

    # ------------------------------------------------------------ the sender

    def _due(self, now: float, limit: int) -> CTE:
        """The ids of up to `limit` due rows, as a CTE an `UPDATE … FROM` takes them by.

        Materialised and joined by id: PostgreSQL selects once and then updates by
        primary key. As `IN (subquery)` (or an inlined CTE) the planner may run the
        selection again for each row, each time skipping the rows this very statement has
        just locked — and take every due row, whatever the limit; and `IN (SELECT id FROM
        due)` was planned as a scan of every queued row against the CTE (26 ms for 50 of
        1 000 rows). No second `state = 'queued'` test in the update: the rows chosen are
        locked (PostgreSQL re-checks its WHERE when it locks them; SQLite has one writer),
        and with it the planner scanned the queued rows again for each one chosen.
        """
        t = outbox_table
        due = (
            select(t.c.id)
            .where(t.c.state == "queued", t.c.due_at <= now)
            .order_by(t.c.id)
            .limit(limit)
        )
        if not self._database.sqlite:
            due = due.with_for_update(skip_locked=True)
        return due.cte("due").prefix_with("MATERIALIZED", dialect="postgresql")

    async def claim(self, limit: int, lease: float) -> list[OutboxRow]:
        """Up to `limit` due rows, leased to a fresh owner for `lease` seconds."""
        now = self.clock()
        owner = uuid.uuid4().hex
        t = outbox_table

        def work(conn: Connection) -> list[OutboxRow]:
            chosen = self._due(now, limit)
            conn.execute(
                update(t)
                .where(t.c.id == chosen.c.id)
                .values(state="claimed", lease_owner=owner, lease_until=now + lease)
            )
            rows = conn.execute(
                select(t).where(t.c.lease_owner == owner, t.c.state == "claimed").order_by(t.c.id)
            ).mappings()
            return [_row(r) for r in rows]

        return await self._run(work)

    async def begin(self, ident: int, lease: float) -> bool:
        """Mark a claimed row as being submitted now; False if its claim was lost."""
        now = self.clock()
        t = outbox_table

        def work(conn: Connection) -> bool:
            result = conn.execute(
                update(t)
                .where(t.c.id == ident, t.c.state == "claimed", t.c.lease_until >= now)
                .values(state="sending", attempts=t.c.attempts + 1, lease_until=now + lease)
            )
            return result.rowcount == 1

        return await self._run(work)

    async def begin_many(self, idents: Sequence[int], lease: float) -> list[int]:
        """`begin` for several claimed rows in one transaction (a sender submitting a
        window's worth at once); the ids whose claim still held."""
        now = self.clock()
        t = outbox_table

        def work(conn: Connection) -> list[int]:
            held = [
                int(i)
                for (i,) in conn.execute(
                    select(t.c.id).where(
                        t.c.id.in_(list(idents)), t.c.state == "claimed", t.c.lease_until >= now
                    )
                )
            ]
            if held:
                conn.execute(
                    update(t)
                    .where(t.c.id.in_(held), t.c.state == "claimed")
                    .values(state="sending", attempts=t.c.attempts + 1, lease_until=now + lease)
                )
            return held

        return await self._run(work)

    async def take(
        self, limit: int, lease: float, sent: Sequence[Accepted] = ()
    ) -> list[OutboxRow]:
        """A send window in one transaction: record `sent` (the window before, which the
        SMSC took) and move up to `limit` due rows straight to `sending` (attempts + 1,
        leased for `lease` seconds), returned in id order.

        One commit per window instead of four (claim, begin, sent, and the claim's
        read-back): the crash rule is unchanged — a row is `sending`, committed, before
        it can reach the SMSC, and a window's rows are all the sender has in flight.
        """
        now = self.clock()
        owner = uuid.uuid4().hex
        t = outbox_table

        def work(conn: Connection) -> tuple[int, list[OutboxRow]]:
            changed = _mark_sent(conn, sent, now)
            if limit <= 0:
                return changed, []
            chosen = self._due(now, limit)
            found = conn.execute(
                update(t)
                .where(t.c.id == chosen.c.id)
                .values(
                    state="sending",
                    attempts=t.c.attempts + 1,
                    lease_owner=owner,
                    lease_until=now + lease,
                )
                .returning(*t.c)
            ).mappings()
            return changed, sorted((_row(r) for r in found), key=lambda row: row.id)

        changed, rows = await self._run(work)
        self._tell("sent", changed)
        return rows

    async def sent_many(self, sent: Sequence[Accepted | tuple[int, str, Sequence[str]]]) -> None:
        """`sent` for several rows in one transaction."""
        now = self.clock()
        window = [s if isinstance(s, Accepted) else Accepted(s[0], s[1], tuple(s[2])) for s in sent]
        if window:
            self._tell("sent", await self._run(lambda conn: _mark_sent(conn, window, now)))

    async def sent(self, ident: int, smsc_ref: str = "", parts: Sequence[str] = ()) -> None:
        """The SMSC took the message: `smsc_ref` is its id (the first part's), `parts`
        the ids of every part of a message sent in several (their receipts decide)."""
        await self.sent_many([(ident, smsc_ref, parts)])

    async def retry(self, ident: int, reason: str, attempts: int) -> str:
        """A transient refusal: queued again after a backoff, or failed past the limit."""
        if attempts >= self.max_attempts:
            await self.fail(ident, f"gave up after {attempts} attempts: {reason}")
            return "failed"
        delay = min(self.retry_max, self.retry_base * 2 ** max(attempts - 1, 0))
        self._tell("retried")
        await self._set(
            ident,
            ("sending",),
            state="queued",
            due_at=self.clock() + delay,
            last_error=reason[:200],
            lease_owner=None,
        )
        return "queued"

    async def fail(self, ident: int, reason: str) -> None:
        self._tell("failed")
        await self._set(
            ident,
            ("sending", "claimed", "doubt"),
            state="failed",
            last_error=reason[:200],
            done_at=self.clock(),
            lease_owner=None,
        )

    async def release(self, ident: int) -> None:
        """Give a claimed, never-submitted row back (the sender is stopping)."""
        await self._set(ident, ("claimed",), state="queued", lease_owner=None)

    async def record_report(self, ident: int, state: ReportState, smsc_ref: str = "") -> bool:
        """A delivery report naming row `ident` (Kannel's dlr-url); False if there is no
        such row. A report resolves an in-doubt row: it was submitted. For a message
        sent in parts it is recorded on a part (`_report_part`), and the message is
        delivered once every part is, failed as soon as one part failed."""
        now = self.clock()
        t = outbox_table

        def work(conn: Connection) -> tuple[str, ReportState] | None:
            row = conn.execute(select(t.c.state).where(t.c.id == ident)).first()
            if row is None:
                return None
            whole = _report_part(conn, ident, state, smsc_ref)
            _settle(conn, ident, str(row.state), whole, smsc_ref, now)
            return str(row.state), whole

        found = await self._run(work)
        if found is not None and found[1] in ("delivered", "failed") and found[0] != found[1]:
            self._tell(found[1])
        return found is not None

    async def record_receipt(self, smsc_ref: str, state: ReportState) -> int | None:
        """A receipt that names only the SMSC's id (SMPP): for a part of a long message,
        recorded on the part, and the message is delivered once every part is, failed
        once one part failed; else the row whose id it is. The row's id, or None when
        no message has that SMSC id (yet: a receipt can overtake `sent`)."""
        now = self.clock()
        t, pt = outbox_table, parts_table

        # Only a message (or part) still waiting for its receipt takes one: an SMSC that
        # restarted numbers its messages from the start again, and a receipt that
        # overtakes `sent` must not land on an older, settled message with the same id —
        # it is looked up again once `sent` is recorded (RECEIPT_WAITS).
        def work(conn: Connection) -> tuple[int, str, ReportState] | None:
            part = conn.execute(
                select(pt.c.id, pt.c.row_id)
                .where(pt.c.smsc_ref == smsc_ref, pt.c.state.notin_(_SETTLED))
                .order_by(pt.c.id.desc())
                .limit(1)
            ).first()
            if part is None:
                found = conn.execute(
                    select(t.c.id)
                    .where(t.c.smsc_ref == smsc_ref, t.c.state.notin_(_SETTLED))
                    .order_by(t.c.id.desc())
                    .limit(1)
                ).first()
                if found is None:
                    return None
                ident, whole = int(found.id), state
            else:
                ident = int(part.row_id)
                if state in ("delivered", "failed"):
                    conn.execute(
                        update(pt)
                        .where(pt.c.id == part.id, pt.c.state.notin_(("delivered", "failed")))
                        .values(state=state)
                    )
                whole = _whole([str(s) for s in conn.execute(_part_states(ident)).scalars()])
            row = conn.execute(select(t.c.state).where(t.c.id == ident)).first()
            if row is None:
                return None
            _settle(conn, ident, str(row.state), whole, "", now)
            return ident, str(row.state), whole

        found = await self._run(work)
        if found is None:
            return None
        ident, before, whole = found
        if whole in ("delivered", "failed") and before != whole:
            self._tell(whole)
        return ident

    async def state_of(self, ident: int) -> str | None:
        """Row `ident`'s state (None: no such row)."""
        t = outbox_table

        def work(conn: Connection) -> str | None:
            found = conn.execute(select(t.c.state).where(t.c.id == ident)).scalar()
            return None if found is None else str(found)

        return await self._run(work)

    async def find_smsc_ref(self, smsc_ref: str) -> int | None:
        """The row the SMSC named `smsc_ref` (an SMPP receipt names only the SMSC's id)."""
        t = outbox_table

        def work(conn: Connection) -> int | None:
            row = conn.execute(
                select(t.c.id).where(t.c.smsc_ref == smsc_ref).order_by(t.c.id.desc()).limit(1)
            ).first()
            return None if row is None else int(row.id)

        return await self._run(work)

    async def recover(self, doubt_grace: float) -> dict[str, int]:
        """Leases that ran out: `claimed` rows go back to the queue (they were never
        submitted), `sending` rows become `doubt`; a `doubt` row no report resolved
        within `doubt_grace` seconds fails (not resent). Counts of each move."""
        now = self.clock()
        t = outbox_table

        def work(conn: Connection) -> dict[str, int]:
            requeued = conn.execute(
                update(t)
                .where(t.c.state == "claimed", t.c.lease_until < now)
                .values(state="queued", lease_owner=None)
            ).rowcount
            doubted = conn.execute(
                update(t)
                .where(t.c.state == "sending", t.c.lease_until < now)
                .values(state="doubt", lease_until=now + doubt_grace)
            ).rowcount
            abandoned = conn.execute(
                update(t)
                .where(t.c.state == "doubt", t.c.lease_until < now)
                .values(
                    state="failed",
                    done_at=now,
                    last_error="in doubt after a crash: not resent (it may have been sent)",
                )
            ).rowcount
            return {"requeued": requeued, "doubt": doubted, "abandoned": abandoned}

        moved = await self._run(work)
        for event, count in moved.items():
            self._tell(event, count)
        return moved

    async def purge(self, older_than: float) -> int:
        """Delete messages finished (delivered or failed) more than `older_than` seconds
        ago, with their parts; how many."""
        cutoff = self.clock() - older_than
        t, pt = outbox_table, parts_table

        def work(conn: Connection) -> int:
            done = (
                select(t.c.id)
                .where(t.c.state.in_(("delivered", "failed")), t.c.done_at < cutoff)
                .scalar_subquery()
            )
            conn.execute(delete(pt).where(pt.c.row_id.in_(done)))
            return int(
                conn.execute(
                    delete(t).where(t.c.state.in_(("delivered", "failed")), t.c.done_at < cutoff)
                ).rowcount
            )

        return await self._run(work)

    async def counts(self) -> dict[str, int]:
        """Rows per state (for metrics and tests)."""
        t = outbox_table

        def work(conn: Connection) -> dict[str, int]:
            rows = conn.execute(select(t.c.state, func.count()).group_by(t.c.state))
            return {str(state): int(count) for state, count in rows}

        return await self._run(work)

    async def rows(self, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Rows as stored (tests and operators)."""
        t = outbox_table

        def work(conn: Connection) -> list[dict[str, Any]]:
            query = select(t).order_by(t.c.id)
            if ids is not None:
                query = query.where(t.c.id.in_(list(ids)))
            return [dict(r) for r in conn.execute(query).mappings()]

        return await self._run(work)

    async def _set(self, ident: int, states: tuple[str, ...], **values: Any) -> None:
        t = outbox_table

        def work(conn: Connection) -> None:
            conn.execute(update(t).where(t.c.id == ident, t.c.state.in_(states)).values(**values))

        await self._run(work)


def _row(r: Any) -> OutboxRow:
    values = {name: decode_value(raw) for name, raw in orjson.loads(r["vals"]).items()}
    return OutboxRow(
        id=int(r["id"]),
        subscriber=str(r["subscriber"]),
        kind=r["kind"],
        key=str(r["key"]),
        values=values,
        language=str(r["language"]),
        attempts=int(r["attempts"]),
    )


def _mark_sent(conn: Connection, sent: Sequence[Accepted], now: float) -> int:
    """Record accepted rows `sent` — one UPDATE for the lot (each row's SMSC id by a
    CASE), one INSERT for the parts of long ones; how many rows changed."""
    if not sent:
        return 0
    t = outbox_table
    refs = {s.id: s.smsc_ref or None for s in sent}
    changed = {
        int(i)
        for (i,) in conn.execute(
            update(t)
            .where(t.c.id.in_(list(refs)), t.c.state.in_(("sending", "doubt")))
            .values(
                state="sent",
                sent_at=now,
                smsc_ref=case(refs, value=t.c.id, else_=t.c.smsc_ref),
                lease_owner=None,
            )
            .returning(t.c.id)
        )
    }
    parts = [
        {"row_id": s.id, "number": n, "smsc_ref": ref[:64], "state": "sent"}
        for s in sent
        if len(s.parts) > 1 and s.id in changed
        for n, ref in enumerate(s.parts, start=1)
    ]
    if parts:
        conn.execute(insert(parts_table), parts)
    return len(changed)


#: A part row standing for every part of a message at the SMSC: a gateway that splits
#: the message itself reports once whether the SMSC took every part (Kannel's report 8,
#: or 16 when it refused one), whatever it reports per part after.
ALL_PARTS = "*"
_FINAL = ("delivered", "failed")


def _part_states(ident: int) -> Select[tuple[str]]:
    pt = parts_table
    return select(pt.c.state).where(pt.c.row_id == ident)


_SETTLED = ("delivered", "failed")  # a message or part that takes no further receipt


def _whole(states: Sequence[str]) -> ReportState:
    """A message's state from its parts': failed when one failed, delivered when each is
    (the SMSC's acceptance of every part counts as that part's), else still on its way."""
    if "failed" in states:
        return "failed"
    if all(s in ("delivered", "accepted") for s in states):
        return "delivered"
    return "accepted"


def _report_part(conn: Connection, ident: int, state: ReportState, smsc_ref: str) -> ReportState:
    """Record a report that names the message (Kannel's) on one of its parts; the
    message's state after it (`state` itself for a message of one part).

    The parts of such a message are slots the reports fill (`Accepted.parts`): its
    `ALL_PARTS` row (the SMSC took every part: report 8), and one row per part the
    gateway reports on, its SMSC id unknown ("") until that part's report brings it
    (%F). A delivered report fills the part of its id, else the next empty one; a
    failed report fails a part whatever it said before — a message one part of which
    failed has failed.
    """
    pt = parts_table
    parts = conn.execute(
        select(pt.c.id, pt.c.smsc_ref, pt.c.state).where(pt.c.row_id == ident).order_by(pt.c.number)
    ).all()
    if not parts:
        return state
    mine = next((p for p in parts if smsc_ref and p.smsc_ref == smsc_ref), None)
    every = next((p for p in parts if p.smsc_ref == ALL_PARTS), None)
    empty = next((p for p in parts if p.smsc_ref == "" and p.state == "sent"), None)
    target: Any = None
    if state == "accepted":
        target = every if every is not None and every.state == "sent" else None
    elif state == "delivered":
        target = mine or empty
        if target is not None and target.state != "sent":
            target = None  # said already: a repeated report, or after a failure
    elif state == "failed":
        # A part's own report (its id) fills its slot; one without an id is the SMSC's
        # verdict on every part (Kannel's 16). Either way the message has failed.
        target = mine or (empty if smsc_ref else None) or every or empty or parts[0]
    states = {p.id: str(p.state) for p in parts}
    if target is not None:
        values: dict[str, Any] = {"state": state}
        if target.smsc_ref == "" and smsc_ref:
            values["smsc_ref"] = smsc_ref[:64]
        conn.execute(update(pt).where(pt.c.id == target.id).values(**values))
        states[target.id] = state
    return _whole(list(states.values()))


def _settle(
    conn: Connection, ident: int, before: str, state: ReportState, smsc_ref: str, now: float
) -> None:
    """A message's row after a report: delivered or failed, or `sent` when it was still
    being sent (or in doubt) and the report says the SMSC has it."""
    values: dict[str, Any] = {}
    if smsc_ref:
        values["smsc_ref"] = smsc_ref[:64]
    if state in _FINAL:
        if before != state:
            values.update(state=state, done_at=now)
    elif before in ("sending", "doubt"):
        values.update(state="sent", sent_at=now)
    if values:
        conn.execute(update(outbox_table).where(outbox_table.c.id == ident).values(**values))
