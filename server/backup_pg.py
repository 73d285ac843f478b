"""PostgreSQL backups with pg_dump (custom format) and pg_restore, whose major version must match the server's."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from server.backup import BackupError, Progress, check_revision
from server.config import normalise_db_url

HEADER = b"PGDMP"
# URL query parameters libpq reads from the environment too; anything else in the URL is refused.
_ENV_PARAMS = {
    "host": "PGHOST",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
}
_SEARCH_PATH = re.compile(r"^\s*-c\s*search_path\s*=\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")
_TABLE_LINE = re.compile(r'(?:dumping contents of|processing data for) table "([^"]+)"')


def _url(db_url: str) -> URL:
    return make_url(normalise_db_url(db_url))


def schema_of(db_url: str) -> str | None:
    """The schema named by ``options=-csearch_path=NAME`` in the URL, if any (else the default, public)."""
    options = _url(db_url).query.get("options")
    if options is None:
        return None
    match = _SEARCH_PATH.match(options if isinstance(options, str) else options[0])
    if match is None:
        raise BackupError(f"only options=-csearch_path=SCHEMA is understood in the database URL, not {options!r}", 2)
    return match.group(1)


def libpq_env(db_url: str) -> dict[str, str]:
    """Connection settings for pg_dump/pg_restore as environment, so the password never shows in ps."""
    url = _url(db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username)):
        if value:
            env[key] = str(value)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    if url.database:
        env["PGDATABASE"] = url.database
    for key, value in url.query.items():
        if key == "options":
            continue
        if key not in _ENV_PARAMS:
            raise BackupError(f"database URL parameter {key!r} is not supported by backup/restore", 2)
        env[_ENV_PARAMS[key]] = value if isinstance(value, str) else value[0]
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found; install the PostgreSQL client (Debian: apt install postgresql-client)", 2)
    return path


def _major(version_text: str) -> int:
    match = re.search(r"\)\s+(\d+)", version_text) or re.search(r"(\d+)", version_text)
    if match is None:
        raise BackupError(f"cannot read a version from {version_text.strip()!r}")
    return int(match.group(1))


def server_major(db_url: str) -> int:
    engine = create_engine(normalise_db_url(db_url))
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SHOW server_version_num").scalar()) // 10000
    finally:
        engine.dispose()


def check_tool_version(tool: str, db_url: str) -> str:
    """The tool's path; refuses one older than the server (pg_dump cannot dump a newer server)."""
    path = _tool(tool)
    tool_major = _major(subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout)
    major = server_major(db_url)
    if tool_major < major:
        raise BackupError(
            f"{tool} is version {tool_major} but the server runs PostgreSQL {major}; "
            f"install postgresql-client-{major} and put its bin directory first in PATH",
            2,
        )
    return path


def _run(command: list[str], env: dict[str, str], what: str, progress: Progress) -> None:
    """Run a pg tool with --verbose, turning its per-table lines into progress and its failure into one line."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    errors: list[str] = []
    for line in proc.stderr:
        if match := _TABLE_LINE.search(line):
            progress(f"{what}: table {match.group(1)}")
        elif "error" in line.lower() or "fatal" in line.lower():
            errors.append(line.strip())
    if proc.wait() != 0:
        raise BackupError(f"{os.path.basename(command[0])} failed: {errors[-1] if errors else 'see its output'}")


def backup(db_url: str, out: Path, progress: Progress) -> None:
    env = libpq_env(db_url)
    # Only GuardPost's schema: a database shared with other applications backs up just ours.
    schema = schema_of(db_url) or "public"
    command = [check_tool_version("pg_dump", db_url), "--format=custom", "--verbose", f"--schema={schema}"]
    _run([*command, f"--file={out}"], env, "backup", progress)


def _listing(backup_file: Path) -> str:
    proc = subprocess.run([_tool("pg_restore"), "--list", str(backup_file)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"{backup_file} is not a readable pg_dump archive: {proc.stderr.strip()}", 2)
    return proc.stdout


def _dump_revision(backup_file: Path) -> str | None:
    """The alembic_version row inside the archive, read without restoring anything."""
    proc = subprocess.run(
        [_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(backup_file)],
        capture_output=True,
        text=True,
    )
    lines = proc.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines) and lines[i + 1] != "\\.":
            return lines[i + 1].strip()
    return None


def dump_schemas(listing: str) -> set[str]:
    """Schemas whose tables the archive holds (from ``pg_restore --list``)."""
    return {m.group(1) for m in re.finditer(r"^\d+; \d+ \d+ TABLE (?!DATA )(\S+) ", listing, re.MULTILINE)}


def check_file(backup_file: Path) -> None:
    with backup_file.open("rb") as fh:
        header = fh.read(len(HEADER))
    if header != HEADER:
        hint = " (it is a SQLite backup: restore it into a sqlite:/// database)" if header == b"SQLit" else ""
        raise BackupError(f"{backup_file} is not a PostgreSQL custom-format dump{hint}", 2)
    _listing(backup_file)
    check_revision(_dump_revision(backup_file), str(backup_file))


def _without_schema_entries(listing: str) -> str:
    """The archive's table of contents less the schema itself: restore drops and makes tables, never the schema
    (dropping ``public`` needs its owner, and a schema may hold what is not ours)."""
    entry = re.compile(r"^\d+; \d+ \d+ (?:SCHEMA|COMMENT) - (?:SCHEMA )?\S+ ")
    return "".join(line for line in listing.splitlines(keepends=True) if not entry.match(line))


def restore(db_url: str, backup_file: Path, progress: Progress) -> None:
    target = schema_of(db_url) or "public"
    listing = _listing(backup_file)
    schemas = dump_schemas(listing)
    if schemas != {target}:
        raise BackupError(
            f"{backup_file} holds schema {', '.join(sorted(schemas)) or '(none)'} but the database URL uses "
            f"{target}; restore into a database URL with that schema",
            2,
        )
    env = libpq_env(db_url)
    # pg_restore writes into a database only when given one; the same default as libpq's otherwise.
    dbname = env.get("PGDATABASE") or env.get("PGUSER") or getpass.getuser()
    command = [
        check_tool_version("pg_restore", db_url),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--verbose",
        f"--dbname={dbname}",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".list") as toc:
        toc.write(_without_schema_entries(listing))
        toc.flush()
        _run([*command, f"--use-list={toc.name}", str(backup_file)], env, "restore", progress)
