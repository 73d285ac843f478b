"""One schema upgrade at a time: web workers starting together must not all create the tables at once."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from server.config import normalise_db_url

# pg_advisory_lock key: any constant 64-bit number that no other application on the server uses.
ADVISORY_KEY = 0x6775617264706F73  # "guardpos"


@contextmanager
def schema_lock(db_url: str) -> Iterator[None]:
    """Held while the caller migrates: a file lock beside a SQLite file, an advisory lock on PostgreSQL."""
    url = make_url(normalise_db_url(db_url))
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            yield
            return
        lock_path = Path(f"{url.database}.migrate-lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({ADVISORY_KEY})")
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({ADVISORY_KEY})")
    finally:
        engine.dispose()
