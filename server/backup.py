"""Backup and restore of the whole database (registry, face templates, events, duty logs); the key is not in it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import make_url

from server.config import normalise_db_url
from server.crypto import decrypt_template
from server.db import make_engine, make_sessionmaker
from server.migrate import alembic_config
from server.models import Event, FaceTemplate, Guard, Terminal

Progress = Callable[[str], None]
# Tables whose rows mean a database is in use: restoring over them needs --replace.
IN_USE_TABLES = ("guards", "terminals", "events", "face_templates", "users")
TEMPLATES_CHECKED = 100


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says what to do. ``code`` is the exit code."""

    def __init__(self, message: str, code: int = 3):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Summary:
    guards: int
    face_templates: int
    terminals: int
    events: int
    revision: str | None

    def line(self) -> str:
        return (
            f"{self.guards} guards, {self.face_templates} face templates, {self.terminals} terminals, "
            f"{self.events} events (schema {self.revision})"
        )


def backend(db_url: str) -> str:
    return make_url(normalise_db_url(db_url)).get_backend_name()


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def check_revision(revision: str | None, where: str) -> None:
    if revision is None:
        raise BackupError(f"{where} holds no GuardPost schema (no alembic_version); is it a GuardPost backup?", 2)
    if revision not in known_revisions():
        raise BackupError(
            f"{where} has schema revision {revision}, which this GuardPost does not know: "
            "restore it with the GuardPost version that wrote it, or a newer one",
            2,
        )


def create_private(path: Path) -> None:
    """An empty file only its owner can read (backups hold terminal secrets); never overwrites."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{path} already exists; refusing to overwrite a backup", 2) from None
    except OSError as exc:
        raise BackupError(f"cannot create {path}: {exc.strerror}", 2) from None
    os.close(fd)


def in_use(db_url: str) -> list[str]:
    """The in-use tables of the target that have rows (an absent or empty database has none)."""
    engine = create_engine(normalise_db_url(db_url))
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return [
                t for t in IN_USE_TABLES if t in present and conn.exec_driver_sql(f"SELECT 1 FROM {t} LIMIT 1").first()
            ]
    finally:
        engine.dispose()


def summary(db_url: str) -> Summary:
    """Counts in a database brought to the newest schema (an older backup is migrated here)."""
    from server.migrate import current_revision

    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            counts = [
                s.scalar(select(func.count()).select_from(m)) or 0 for m in (Guard, FaceTemplate, Terminal, Event)
            ]
        return Summary(*counts, revision=current_revision(engine))
    finally:
        engine.dispose()


def check_templates(db_url: str, cipher: Fernet) -> int:
    """Decrypt up to TEMPLATES_CHECKED stored templates with ``cipher``; the number that did."""
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            blobs = s.scalars(select(FaceTemplate.encrypted).order_by(FaceTemplate.id).limit(TEMPLATES_CHECKED)).all()
        for blob in blobs:
            decrypt_template(cipher, blob)  # ConfigError names the mismatched key
        return len(blobs)
    finally:
        engine.dispose()


def backup(db_url: str, out: Path, progress: Progress) -> Summary:
    """Write a consistent copy of the database to ``out`` (mode 600) while the services keep running."""
    from server import backup_pg, backup_sqlite

    create_private(out)
    try:
        if backend(db_url) == "sqlite":
            backup_sqlite.backup(db_url, out, progress)
        elif backend(db_url) == "postgresql":
            backup_pg.backup(db_url, out, progress)
        else:
            raise BackupError(f"cannot back up a {backend(db_url)} database; GuardPost supports SQLite and PostgreSQL")
    except BaseException:
        out.unlink(missing_ok=True)  # never leave a partial backup that looks whole
        raise
    return summary(db_url)


def restore(db_url: str, backup_file: Path, *, replace: bool, progress: Progress) -> Summary:
    """Load ``backup_file`` into the database; refuses to overwrite one in use unless ``replace``."""
    from server import backup_pg, backup_sqlite

    if not backup_file.is_file():
        raise BackupError(f"no backup file at {backup_file}", 2)
    kind = backend(db_url)
    module = {"sqlite": backup_sqlite, "postgresql": backup_pg}.get(kind)
    if module is None:
        raise BackupError(f"cannot restore into a {kind} database; GuardPost supports SQLite and PostgreSQL", 2)
    module.check_file(backup_file)
    used = in_use(db_url)
    if used and not replace:
        raise BackupError(
            f"the target database already has data ({', '.join(used)}); stop the GuardPost services and "
            "pass --replace to overwrite it, or restore into an empty database",
            2,
        )
    module.restore(db_url, backup_file, progress)
    return summary(db_url)
