"""A durable store's database as its owner uses it: opened and migrated on first use (an
app that never writes never creates the file), each unit of work one transaction, run
in the store's own worker threads so a request never waits on SQL.

SQLite gets one worker: it serialises writers, so writes queue here instead of on the
file lock. `hotline.store.outbox.Outbox` and `api.store.ApiStore` are built on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine

from hotline.store.db import Migration, migrate, open_database

__all__ = ["ThreadedDatabase"]

T = TypeVar("T")


class ThreadedDatabase:
    """The engine of `url` with `migrations` applied, and `workers` threads to use it."""

    def __init__(
        self, url: str, migrations: Sequence[Migration], *, workers: int, name: str
    ) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self._migrations = migrations
        self._engine: Engine | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.sqlite else workers, thread_name_prefix=name
        )

    def engine(self) -> Engine:
        """The engine, opened and migrated on first use."""
        if self._engine is None:
            engine = open_database(self.url)
            migrate(engine, self._migrations)
            self._engine = engine
        return self._engine

    def run_sync(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction, in this thread (the command line's way)."""
        with self.engine().begin() as conn:
            return work(conn)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.run_sync, work)

    async def close(self) -> None:
        """Wait for the work under way, then close the engine's connections."""
        self._executor.shutdown(wait=True)
        if self._engine is not None:
            self._engine.dispose()
