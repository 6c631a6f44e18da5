"""The embedded provider's money: the balance ledger file (`hotline.balance.ledger`).

A charge and the allowance it buys are one SQLite transaction in the ledger itself,
recorded in `plan_charge` under the order id: charging the same order again changes
nothing and answers `ok`, so a retried or reconciled order never moves money twice,
and the balance every channel reads is the one that was charged.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Any, Literal

from hotline.base.errors import UpstreamUnavailable
from hotline.plans.model import Allowance

__all__ = ["Charge", "LedgerWallet"]

Charge = Literal["ok", "insufficient", "missing"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plan_charge (
    order_id   TEXT PRIMARY KEY,
    msisdn     TEXT NOT NULL,
    amount     INTEGER NOT NULL,
    charged_at TEXT NOT NULL
);
"""


class LedgerWallet:
    """Status, charges and allowances on the ledger file (thread-safe, one connection)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise UpstreamUnavailable(f"ledger: {type(exc).__name__}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def status(self, msisdn: str) -> str | None:
        """The account status, or None for a number the ledger does not have."""
        row = self._one("SELECT status FROM subscriber WHERE msisdn = ?", msisdn)
        return None if row is None else str(row[0])

    def charged(self, order_id: str) -> int | None:
        """What the order was charged, or None if it never was."""
        row = self._one("SELECT amount FROM plan_charge WHERE order_id = ?", order_id)
        return None if row is None else int(row[0])

    def _one(self, sql: str, key: str) -> tuple[Any, ...] | None:
        """The first row of a one-key query; a database error is the upstream's."""
        try:
            with self._lock:
                row: tuple[Any, ...] | None = self._db.execute(sql, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise UpstreamUnavailable(f"ledger: {type(exc).__name__}") from exc
        return row

    def charge(
        self,
        order_id: str,
        msisdn: str,
        amount: int,
        grants: Allowance,
        until: dt.datetime | None,
    ) -> Charge:
        """Take `amount` and add `grants`, once per order id (see the module docstring)."""
        try:
            return self._charge(order_id, msisdn, amount, grants, until)
        except sqlite3.Error as exc:
            raise UpstreamUnavailable(f"ledger: {type(exc).__name__}") from exc

    def _charge(
        self,
        order_id: str,
        msisdn: str,
        amount: int,
        grants: Allowance,
        until: dt.datetime | None,
    ) -> Charge:
        now = dt.datetime.now(dt.UTC).isoformat()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                done = db.execute(
                    "SELECT 1 FROM plan_charge WHERE order_id = ?", (order_id,)
                ).fetchone()
                if done is not None:
                    db.execute("COMMIT")
                    return "ok"
                row = db.execute(
                    "SELECT main_minor FROM subscriber WHERE msisdn = ?", (msisdn,)
                ).fetchone()
                if row is None:
                    db.execute("ROLLBACK")
                    return "missing"
                if int(row[0]) < amount:
                    db.execute("ROLLBACK")
                    return "insufficient"
                db.execute(
                    "UPDATE subscriber SET main_minor = main_minor - ?, updated_at = ? "
                    "WHERE msisdn = ?",
                    (amount, now, msisdn),
                )
                for kind, extra in (
                    ("data", grants.data_bytes),
                    ("voice", grants.voice_seconds),
                    ("sms", grants.sms),
                ):
                    if extra > 0:
                        db.execute(
                            "INSERT INTO bucket (msisdn, usage_type, remaining, valid_until) "
                            "VALUES (?, ?, ?, ?) ON CONFLICT (msisdn, usage_type) DO UPDATE "
                            "SET remaining = remaining + excluded.remaining",
                            (msisdn, kind, extra, None if until is None else until.isoformat()),
                        )
                db.execute(
                    "INSERT INTO plan_charge (order_id, msisdn, amount, charged_at) "
                    "VALUES (?, ?, ?, ?)",
                    (order_id, msisdn, amount, now),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return "ok"
