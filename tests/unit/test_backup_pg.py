"""How a database URL becomes pg_dump/pg_restore settings, and what restore leaves out of an archive."""

from __future__ import annotations

import pytest

from server.backup import BackupError
from server.backup_pg import _major, _without_schema_entries, dump_schemas, libpq_env, schema_of

LISTING = """;
; Archive created at 2026-11-24 18:10:00 UTC
6; 2615 16653 SCHEMA - gp_x postgres
3568; 0 0 COMMENT - SCHEMA public pg_database_owner
215; 1259 16654 TABLE gp_x alembic_version postgres
222; 1259 16693 SEQUENCE gp_x events_id_seq postgres
3601; 0 16694 TABLE DATA gp_x events postgres
"""


def test_password_and_host_go_to_the_environment_not_the_command_line(monkeypatch):
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=1GB")  # a stray setting of the caller's shell is not inherited
    env = libpq_env("postgresql://gp:s3cret%40x@db.example:6543/guardpost?sslmode=verify-full")
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGPASSWORD"]) == ("db.example", "6543", "gp", "s3cret@x")
    assert env["PGDATABASE"] == "guardpost" and env["PGSSLMODE"] == "verify-full" and "PGOPTIONS" not in env


def test_unix_socket_url():
    env = libpq_env("postgresql://guardpost@/guardpost?host=/var/run/postgresql")
    assert env["PGHOST"] == "/var/run/postgresql" and "PGPASSWORD" not in env


def test_unknown_url_parameters_are_refused():
    with pytest.raises(BackupError, match="'target_session_attrs' is not supported"):
        libpq_env("postgresql://h/db?target_session_attrs=read-write")


def test_schema_from_search_path_option():
    assert schema_of("postgresql://h/db") is None
    assert schema_of("postgresql://h/db?options=-csearch_path%3Dgp_abc") == "gp_abc"
    with pytest.raises(BackupError, match="only options=-csearch_path"):
        schema_of("postgresql://h/db?options=-cstatement_timeout%3D5")


def test_restore_keeps_tables_and_data_but_not_the_schema_itself():
    kept = _without_schema_entries(LISTING)
    assert "SCHEMA - gp_x" not in kept and "COMMENT - SCHEMA public" not in kept
    assert "TABLE gp_x alembic_version" in kept and "TABLE DATA gp_x events" in kept
    assert dump_schemas(LISTING) == {"gp_x"}


@pytest.mark.parametrize(
    ("text", "major"),
    [("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)", 15), ("pg_restore (PostgreSQL) 9.6.24", 9)],
)
def test_tool_versions(text, major):
    assert _major(text) == major
