"""A database error never carries the statement's values (a number, an amount) into logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError

from hotline.store.db import open_database, sqlite_url


def test_a_failed_statement_does_not_repeat_its_values(tmp_path: Path) -> None:
    engine = open_database(sqlite_url(tmp_path / "store.sqlite3"))
    table = Table("t", MetaData(), Column("msisdn", String, primary_key=True))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(msisdn="+8613800138000"))
    with pytest.raises(IntegrityError) as failed, engine.begin() as conn:
        conn.execute(insert(table).values(msisdn="+8613800138000"))
    assert "13800138000" not in str(failed.value)
    assert "UNIQUE" in str(failed.value)  # still says what went wrong
    engine.dispose()
