"""guardpost backup / restore round trip on the test database (SQLite, or PostgreSQL with DATABASE_URL)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from server import registry
from server.backup import backend
from server.backup_pg import schema_of
from server.config import normalise_db_url
from server.crypto import decrypt_template, encrypt_template, generate_key_file, load_cipher
from server.db import make_engine, make_sessionmaker
from server.models import Event, FaceTemplate, Guard, Terminal, utcnow

ID_NUMBER = "11010519491231002X"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    return subprocess.run(
        [sys.executable, "-m", "guardpost", *args], env={**base, **env}, capture_output=True, text=True, timeout=300
    )


def snapshot(db_url: str, key_file: Path) -> dict:
    """Everything the round trip must bring back, templates decrypted with the key."""
    cipher = load_cipher(key_file)
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as s:
        guards = [
            (
                g.guard_id,
                g.name,
                g.id_number_masked,
                cipher.decrypt(g.id_number_encrypted).decode() if g.id_number_encrypted else None,
            )
            for g in s.scalars(select(Guard).order_by(Guard.guard_id))
        ]
        templates = [
            (t.guard_id, decrypt_template(cipher, t.encrypted).tolist())
            for t in s.scalars(select(FaceTemplate).order_by(FaceTemplate.id))
        ]
        events = [
            (e.event_id, e.seq, e.guard_id, e.captured_at, e.payload)
            for e in s.scalars(select(Event).order_by(Event.id))
        ]
        terminals = [(t.device_id, t.secret) for t in s.scalars(select(Terminal))]
    engine.dispose()
    return {"guards": guards, "templates": templates, "events": events, "terminals": terminals}


def populate(db_url: str, key_file: Path, guards: int = 3, events: int = 50) -> None:
    cipher = load_cipher(key_file)
    rng = np.random.default_rng(7)
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as s:
        registry.add_device(s, "site-a", "gate-1")
        for i in range(guards):
            number = ID_NUMBER if i == 0 else None
            registry.add_guard(s, f"G-{i}", f"Guard {i}", ["site-a"], True, cipher=cipher, id_number=number)
            s.add(
                FaceTemplate(
                    guard_id=f"G-{i}", encrypted=encrypt_template(cipher, rng.normal(size=128)), photo_sha256="0" * 64
                )
            )
        now = utcnow()
        for seq in range(1, events + 1):
            s.add(
                Event(
                    event_id=str(uuid.uuid4()),
                    device_id="gate-1",
                    site_id="site-a",
                    seq=seq,
                    type="check_in",
                    method="face",
                    guard_id=f"G-{seq % guards}",
                    captured_at=now - timedelta(minutes=seq),
                    clock_synced=True,
                    payload={"seq": seq, "evidence_sha256": "ab" * 32},
                )
            )
        s.commit()
    engine.dispose()


def wipe(db_url: str) -> None:
    """Lose the database as a disk failure would: the SQLite file, or every table of the PostgreSQL schema."""
    if backend(db_url) == "sqlite":
        path = Path(make_url(db_url).database)
        for extra in ("", "-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        return
    schema = schema_of(db_url) or "public"
    engine = create_engine(normalise_db_url(db_url))
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


@pytest.fixture
def env(db_url, tmp_path):
    key = tmp_path / "keys" / "server.key"
    generate_key_file(key)
    return {"GUARDPOST_DB": db_url, "GUARDPOST_KEY_FILE": str(key)}


def test_round_trip_brings_back_guards_templates_and_events(env, tmp_path):
    key = Path(env["GUARDPOST_KEY_FILE"])
    populate(env["GUARDPOST_DB"], key)
    before = snapshot(env["GUARDPOST_DB"], key)
    assert len(before["templates"]) == 3 and len(before["events"]) == 50 and before["guards"][0][3] == ID_NUMBER

    out = tmp_path / "backups" / "guardpost.backup"
    out.parent.mkdir()
    made = run("backup", "--out", str(out), env=env)
    assert made.returncode == 0, made.stderr
    assert "3 guards, 3 face templates, 1 terminals, 50 events" in made.stdout
    assert "back up GUARDPOST_KEY_FILE separately" in made.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "backup:" in made.stderr  # progress lines

    again = run("backup", "--out", str(out), env=env)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr

    wipe(env["GUARDPOST_DB"])
    restored = run("restore", str(out), env=env)
    assert restored.returncode == 0, restored.stderr
    assert (
        "restored" in restored.stdout
        and "face templates decrypt with the configured key (3 checked)" in restored.stdout
    )
    assert snapshot(env["GUARDPOST_DB"], key) == before


def test_restore_over_data_needs_replace_and_then_replaces(env, tmp_path):
    key = Path(env["GUARDPOST_KEY_FILE"])
    populate(env["GUARDPOST_DB"], key, guards=2, events=5)
    before = snapshot(env["GUARDPOST_DB"], key)
    out = tmp_path / "b.backup"
    assert run("backup", "--out", str(out), env=env).returncode == 0
    engine = make_engine(env["GUARDPOST_DB"])
    with make_sessionmaker(engine)() as s:
        registry.add_guard(s, "G-late", "Added after the backup", ["site-a"])
        s.commit()
    engine.dispose()

    refused = run("restore", str(out), env=env)
    assert refused.returncode == 2 and "pass --replace" in refused.stderr
    assert len(snapshot(env["GUARDPOST_DB"], key)["guards"]) == 3  # nothing touched

    replaced = run("restore", str(out), "--replace", env=env)
    assert replaced.returncode == 0, replaced.stderr
    assert snapshot(env["GUARDPOST_DB"], key) == before


def test_restore_with_the_wrong_key_says_so(env, tmp_path):
    populate(env["GUARDPOST_DB"], Path(env["GUARDPOST_KEY_FILE"]), guards=1, events=1)
    out = tmp_path / "b.backup"
    assert run("backup", "--out", str(out), env=env).returncode == 0
    wipe(env["GUARDPOST_DB"])
    other = tmp_path / "other.key"
    generate_key_file(other)
    wrong = run("restore", str(out), env={**env, "GUARDPOST_KEY_FILE": str(other)})
    assert wrong.returncode == 3
    assert "restored, but a stored template cannot be decrypted" in wrong.stdout
    assert "restore the key file that was in use" in wrong.stdout


def test_a_file_that_is_not_a_backup_is_refused(env, tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    out = run("restore", str(bogus), env=env)
    assert out.returncode == 2 and out.stderr.startswith(f"error: {bogus} is not a ")
    missing = run("restore", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 2 and "no backup file" in missing.stderr


@pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="needs PostgreSQL (DATABASE_URL)")
def test_pg_dump_older_than_the_server_is_refused(env, tmp_path):
    # A stand-in for an old client package: the real pg_dump here matches the server.
    fake = tmp_path / "bin" / "pg_dump"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    fake.chmod(0o755)
    out = run("backup", "--out", str(tmp_path / "b"), env={**env, "PATH": f"{fake.parent}:{os.environ['PATH']}"})
    assert out.returncode == 2 and "pg_dump is version 9 but the server runs PostgreSQL" in out.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="needs PostgreSQL (DATABASE_URL)")
def test_real_pg_tools_match_the_server_major_version():
    """pg_dump and pg_restore on this machine are the server's major version (15 in CI)."""
    from server.backup_pg import _major, check_tool_version, server_major

    major = server_major(os.environ["DATABASE_URL"])
    for tool in ("pg_dump", "pg_restore"):
        path = check_tool_version(tool, os.environ["DATABASE_URL"])
        assert _major(subprocess.run([path, "--version"], capture_output=True, text=True).stdout) == major
