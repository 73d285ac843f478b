"""``guardpost audit seal|verify`` as a user runs them: exit codes, one-line reports, anchors, two sealers at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text

from server.audit.kinds import KINDS
from server.audit.tables import AuditEntry
from server.db import make_engine, make_sessionmaker
from server.models import Event
from server.registry import add_device

pytestmark = pytest.mark.slow


def guardpost(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")} | {"GUARDPOST_DB": db_url}
    command = [sys.executable, "-m", "guardpost", "audit", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def db(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        add_device(session, "site-a", "gate-1")
        session.add_all(
            Event(
                event_id=str(uuid.uuid4()),
                device_id="gate-1",
                site_id="site-a",
                seq=seq,
                type="check_in",
                method="card",
                guard_id=f"G-{seq % 5}",
                captured_at=datetime(2026, 4, 1, 6, 0) + timedelta(minutes=seq),
                clock_synced=True,
                payload={"seq": seq},
            )
            for seq in range(1, 601)
        )
        session.commit()
    yield engine
    engine.dispose()


def test_seal_verify_tamper_and_the_published_anchor(db, db_url):
    sealed = guardpost(db_url, "seal")
    assert sealed.returncode == 0, sealed.stderr
    assert sealed.stdout.startswith(f"sealed 600 events; chain head: entry {600 + len(KINDS)} ")
    ok = guardpost(db_url, "verify", "--month", "2026-04")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0] == "2026-04 intact: 600 events match the chain; 601 link(s) checked"
    assert lines[-1].startswith("anchor 2026-04: ") and lines[-1].endswith(
        f"(chain entry {600 + len(KINDS)}; 600 event)"
    )
    anchor = lines[-1].split()[2]

    with db.begin() as connection:
        connection.execute(text("UPDATE events SET guard_id = 'G-999' WHERE seq = 17"))
    tampered = guardpost(db_url, "verify", "--month", "2026-04", "--anchor", anchor)
    assert tampered.returncode == 1
    first, *rest = tampered.stdout.splitlines()
    assert first.startswith("modified: event ") and "(id 17) was changed after it was sealed" in first
    assert "2026-04 TAMPERED: 1 problem(s) (1 modified)" in rest
    assert "no anchor: the chain does not vouch for this month as it stands" in rest

    report = json.loads(guardpost(db_url, "verify", "--month", "2026-04", "--json").stdout)
    assert report["intact"] is False and [p["category"] for p in report["problems"]] == ["modified"]
    assert report["anchor"]["entry_hash"] == anchor  # the rows changed, the chain did not


@pytest.mark.parametrize(
    "args, says",
    [
        (["--month", "2026-4"], "error: --month: month '2026-4' must look like 2026-04"),
        (["--month", "2026-04", "--anchor", "abc"], "error: --anchor must be the 64 hex digits"),
        (["--month", "2026-04", "--site", "nowhere"], "error: no site 'nowhere' in the database or the chain"),
        (["--month", "2026-04", "--anchor", "0" * 64], None),  # well-formed but never published: tampered, 1
    ],
)
def test_usage_errors_exit_2_with_one_line(db, db_url, args, says):
    out = guardpost(db_url, "verify", *args)
    if says is None:
        assert out.returncode == 1 and "is not in the chain" in out.stdout
    else:
        assert out.returncode == 2 and out.stderr.strip().startswith(says), out.stderr


def test_an_anchor_of_another_month_is_a_usage_error(db, db_url):
    with db.begin() as connection:
        connection.execute(text("UPDATE events SET captured_at = '2026-05-02 08:00:00' WHERE seq = 600"))
    guardpost(db_url, "seal")
    may = guardpost(db_url, "verify", "--month", "2026-05").stdout.splitlines()[-1].split()[2]
    out = guardpost(db_url, "verify", "--month", "2026-04", "--anchor", may)
    assert (
        out.returncode == 2
        and out.stderr.strip() == f"error: anchor {may[:16]}... is the anchor of 2026-05, not 2026-04"
    )


def test_two_seal_processes_at_once_build_one_chain(db, db_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")} | {"GUARDPOST_DB": db_url}
    command = [sys.executable, "-m", "guardpost", "audit", "seal", "--batch", "5"]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    sealed = sum(int(out.split()[1]) for out, _err in outs if not out.startswith("sealed no records"))
    assert sealed == 600, outs
    with make_sessionmaker(db)() as session:
        seqs = list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
    assert seqs == list(range(1, 600 + len(KINDS) + 1))  # and a start marker per kind
    assert guardpost(db_url, "verify", "--month", "2026-04").returncode == 0
