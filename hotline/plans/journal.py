"""The order journal: every order this service submitted, kept durably (`plan_order`).

A row is written (`begin`) before the order leaves the process, under the order id the
upstream also gets as its idempotency key, so a second confirmation, a gateway retry or
a worker restarted after a crash finds the row instead of ordering again. A row that is
not final is *due* for a status poll (`due`); `claim_receipt` flips `notified` once, so
exactly one worker sends the SMS receipt.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from hotline.plans.model import FINAL_STATES, OrderOutcome, OrderRequest
from hotline.plans.tables import orders

__all__ = ["Journal", "JournalRow"]


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One journalled order."""

    id: str
    msisdn: str
    offer_id: str
    offer_name: str
    price_minor: int
    currency: str
    effect: str
    language: str
    state: str
    reason: str | None
    upstream_id: str | None
    effective_on: dt.date | None
    charged_minor: int
    created_at: float
    polls: int
    notified: bool

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _row(found: object) -> JournalRow:
    m = found._mapping  # type: ignore[attr-defined]
    return JournalRow(
        id=m["id"],
        msisdn=m["msisdn"],
        offer_id=m["offer_id"],
        offer_name=m["offer_name"],
        price_minor=int(m["price_minor"]),
        currency=m["currency"],
        effect=m["effect"],
        language=m["language"],
        state=m["state"],
        reason=m["reason"],
        upstream_id=m["upstream_id"],
        effective_on=dt.date.fromisoformat(m["effective_on"]) if m["effective_on"] else None,
        charged_minor=int(m["charged_minor"] or 0),
        created_at=float(m["created_at"]),
        polls=int(m["polls"] or 0),
        notified=bool(m["notified"]),
    )


class Journal:
    """Synchronous access to `plan_order` (callers run it in a worker thread)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def begin(self, request: OrderRequest, language: str) -> tuple[JournalRow, bool]:
        """The row of this order id, written now if there was none; True if it is new."""
        now = self._clock()
        offer = request.offer
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(orders).values(
                        id=request.order_id,
                        msisdn=request.msisdn,
                        offer_id=offer.id,
                        offer_name=offer.name,
                        price_minor=offer.price_minor,
                        currency=offer.currency,
                        effect=offer.effect,
                        language=language,
                        state="acknowledged",
                        charged_minor=0,
                        created_at=now,
                        updated_at=now,
                        next_poll_at=now,
                        polls=0,
                        notified=False,
                    )
                )
            created = True
        except IntegrityError:
            created = False
        row = self.get(request.order_id)
        assert row is not None
        return row, created

    def get(self, order_id: str) -> JournalRow | None:
        with self._engine.connect() as conn:
            found = conn.execute(select(orders).where(orders.c.id == order_id)).first()
        return None if found is None else _row(found)

    def record(self, outcome: OrderOutcome, *, next_poll_in: float | None = None) -> JournalRow:
        """Store what the upstream said; a final state is never overwritten by a later one."""
        now = self._clock()
        values: dict[str, object] = {
            "state": outcome.state,
            "reason": outcome.reason,
            "updated_at": now,
            "next_poll_at": None if outcome.final else now + (next_poll_in or 0.0),
            "charged_minor": outcome.charged_minor,
        }
        if outcome.upstream_id is not None:
            values["upstream_id"] = outcome.upstream_id
        if outcome.effective_on is not None:
            values["effective_on"] = outcome.effective_on.isoformat()
        with self._engine.begin() as conn:
            conn.execute(
                update(orders)
                .where(orders.c.id == outcome.order_id)
                .where(orders.c.state.not_in(sorted(FINAL_STATES)))
                .values(**values)
            )
        row = self.get(outcome.order_id)
        assert row is not None
        return row

    def polled(self, order_id: str, next_poll_in: float) -> None:
        """One more poll that learnt nothing; the next one after `next_poll_in`."""
        now = self._clock()
        with self._engine.begin() as conn:
            conn.execute(
                update(orders)
                .where(orders.c.id == order_id)
                .where(orders.c.state.not_in(sorted(FINAL_STATES)))
                .values(polls=orders.c.polls + 1, next_poll_at=now + next_poll_in, updated_at=now)
            )

    def due(self, limit: int = 50) -> list[JournalRow]:
        """Orders not final whose next poll is due, oldest first."""
        now = self._clock()
        with self._engine.connect() as conn:
            found = conn.execute(
                select(orders)
                .where(orders.c.state.not_in(sorted(FINAL_STATES)))
                .where(orders.c.next_poll_at <= now)
                .order_by(orders.c.next_poll_at)
                .limit(limit)
            ).all()
        return [_row(r) for r in found]

    def claim_receipt(self, order_id: str) -> bool:
        """True for exactly one caller per final order: that one sends the receipt."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(orders)
                .where(orders.c.id == order_id)
                .where(orders.c.notified.is_(False))
                .where(orders.c.state.in_(sorted(FINAL_STATES)))
                .values(notified=True)
            )
        return done.rowcount == 1

    def unclaim_receipt(self, order_id: str) -> None:
        """The receipt could not be queued: let the next poll try again."""
        with self._engine.begin() as conn:
            conn.execute(update(orders).where(orders.c.id == order_id).values(notified=False))

    def unnotified(self, limit: int = 50) -> list[JournalRow]:
        """Final orders whose receipt is not sent yet (a worker died in between)."""
        with self._engine.connect() as conn:
            found = conn.execute(
                select(orders)
                .where(orders.c.state.in_(sorted(FINAL_STATES)))
                .where(orders.c.notified.is_(False))
                .limit(limit)
            ).all()
        return [_row(r) for r in found]

    def recent(self, msisdn: str | None = None, limit: int = 50) -> list[JournalRow]:
        query = select(orders).order_by(orders.c.created_at.desc()).limit(limit)
        if msisdn is not None:
            query = query.where(orders.c.msisdn == msisdn)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).all()]
