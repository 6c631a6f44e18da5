"""A throwaway PostgreSQL database for the durable-store tests.

`HOTLINE_TEST_DATABASE_URL` (a SQLAlchemy URL) wins; otherwise, as root on a machine
running PostgreSQL (Debian's cluster), a role and a fresh database are made with
`runuser -u postgres -- psql` and dropped afterwards. Elsewhere the PostgreSQL cases
skip, saying why (SQLite, the embedded default, always runs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy

__all__ = ["postgres_url"]

_ROLE = "hotline_test"
_PASSWORD = "hotline-test-only"


def _psql(sql: str) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        check=True,
        capture_output=True,
        timeout=30,
    )


def postgres_url() -> Iterator[str]:
    external = os.environ.get("HOTLINE_TEST_DATABASE_URL")
    if external:
        engine = sqlalchemy.create_engine(external)
        with engine.begin() as conn:
            conn.execute(
                sqlalchemy.text(
                    "DROP TABLE IF EXISTS sms_outbox, sms_outbox_parts, hotline_migrations"
                )
            )
        engine.dispose()
        yield external
        return
    if os.geteuid() != 0 or not shutil.which("runuser") or not shutil.which("psql"):
        pytest.skip("no PostgreSQL: set HOTLINE_TEST_DATABASE_URL (or run as root beside one)")
    name = f"hotline_test_{uuid.uuid4().hex[:10]}"
    try:
        _psql(
            f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{_ROLE}') THEN "
            f"CREATE ROLE {_ROLE} LOGIN PASSWORD '{_PASSWORD}'; END IF; END$$;"
        )
        _psql(f"CREATE DATABASE {name} OWNER {_ROLE}")
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"no PostgreSQL here ({type(exc).__name__})")
    yield f"postgresql+psycopg://{_ROLE}:{_PASSWORD}@127.0.0.1:5432/{name}"
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
