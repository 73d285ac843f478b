"""SQLite backups through SQLite's online backup API: a consistent copy while ingest keeps writing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from server.backup import BackupError, Progress, check_revision
from server.config import normalise_db_url

HEADER = b"SQLite format 3\x00"
PAGES_PER_STEP = 4096


def database_path(db_url: str) -> Path:
    name = make_url(normalise_db_url(db_url)).database
    if not name or name == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up or restore into; set --db", 2)
    return Path(name)


def _copy(source: sqlite3.Connection, target: sqlite3.Connection, what: str, progress: Progress) -> None:
    shown = -1

    def step(_status: int, remaining: int, total: int) -> None:
        nonlocal shown
        percent = 100 * (total - remaining) // max(total, 1)
        if percent // 10 != shown // 10:  # a line every 10 %
            shown = percent
            progress(f"{what}: {percent}% of {total} pages")

    source.backup(target, pages=PAGES_PER_STEP, progress=step)


def backup(db_url: str, out: Path, progress: Progress) -> None:
    path = database_path(db_url)
    if not path.is_file():
        raise BackupError(f"no SQLite database at {path}; check --db / GUARDPOST_DB", 2)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(out)
    try:
        _copy(source, target, "backup", progress)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        if target.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"the copy in {out} fails SQLite's check; the source may be damaged")
    finally:
        target.close()
        source.close()


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def check_file(backup_file: Path) -> None:
    with backup_file.open("rb") as fh:
        header = fh.read(len(HEADER))
    if header != HEADER:
        hint = " (it is a PostgreSQL dump: restore it into a postgresql:// database)" if header[:5] == b"PGDMP" else ""
        raise BackupError(f"{backup_file} is not a SQLite backup{hint}", 2)
    connection = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"{backup_file} is damaged (SQLite quick_check fails)", 2)
        check_revision(_revision(connection), str(backup_file))
    finally:
        connection.close()


def restore(db_url: str, backup_file: Path, progress: Progress) -> None:
    path = database_path(db_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    target = sqlite3.connect(path, timeout=30)
    try:
        _copy(source, target, "restore", progress)
    except sqlite3.OperationalError as exc:
        raise BackupError(f"cannot write {path}: {exc}; stop the GuardPost services first") from None
    finally:
        target.close()
        source.close()
