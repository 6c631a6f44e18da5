"""`sqlite:///:memory:` (the dialogues' reminder store): one database for every thread."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.engine import Connection

from hotline.store.db import Migration
from hotline.store.threaded import ThreadedDatabase

metadata = MetaData()
NOTES = Table("notes", metadata, Column("n", Integer, primary_key=True))
MIGRATIONS = [Migration("notes-1", lambda conn: metadata.create_all(conn))]


async def test_a_memory_database_is_one_database_for_every_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = ThreadedDatabase("sqlite:///:memory:", MIGRATIONS, workers=1, name="memory")

    def write(conn: Connection) -> None:
        conn.execute(insert(NOTES).values(n=7))

    def read(conn: Connection) -> list[int]:
        return [row.n for row in conn.execute(select(NOTES.c.n))]

    with caplog.at_level(logging.ERROR):
        await database.run(write)  # the store's worker thread
        assert database.run_sync(read) == [7]  # this thread: the same database
        assert await database.run(read) == [7]
        await database.close()  # from this thread, closing what the worker opened
    assert "Exception closing connection" not in caplog.text
    assert "SQLite objects created in a thread" not in caplog.text
