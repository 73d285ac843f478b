"""Duty API and CLI: a day's log, corrections by role with their audit entry, findings to review."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.duty.service import import_roster, import_shifts, recompute
from server.lookup_digests import ServerCipher
from server.models import Site
from server.registry import add_device
from server.users import add_user
from server.web import create_app
from tests.integration.test_duty_service import _event_row
from tests.support.month import scripted_month


@pytest.fixture(scope="module")
def month():
    return scripted_month(days=3, sites=2, guards_per_site=6)


@pytest.fixture
def client(db_url, month):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        import_shifts(session, month.shifts_csv())
        import_roster(session, month.roster_csv())
        for site_id, device_id in month.devices.items():
            add_device(session, site_id, device_id)
        session.add_all(_event_row(p, i) for i, p in enumerate(month.punches, 1))
        recompute(session, month.sites, month.first_date, month.last_date, month.now)
        for site in session.scalars(select(Site)):
            site.province = "440000"
        tokens = {
            "supervisor": add_user(session, "supervisor-1", "supervisor", site_ids=month.sites)[1],
            "police": add_user(session, "police-1", "police", jurisdiction="广东省")[1],
        }
        session.commit()
    app = create_app(ServerSettings(db_url=db_url), engine=engine, cipher=ServerCipher(Fernet.generate_key()))
    client = app.test_client()
    client.tokens = tokens
    yield client
    engine.dispose()


def get(client, path, role="supervisor"):
    return client.get(path, headers={"Authorization": f"Bearer {client.tokens[role]}"})


def test_duty_log_of_a_day(client, month):
    day = month.first_date.isoformat()
    body = get(client, f"/api/v1/duty?date={day}").get_json()
    expected = {k: v for k, v in month.expected.by_duty.items() if k[2] == month.first_date}
    got = {(r["guard_id"], r["shift_id"], r["date"]): r["status"] for r in body["records"] if r["shift_id"]}
    assert got == {(g, s, d.isoformat()): status for (g, s, d), status in expected.items()}
    assert get(client, "/api/v1/duty?date=yesterday").status_code == 400


def test_corrections_need_a_role_and_a_reason_and_are_audited(client, month):
    record = next(
        r for r in get(client, f"/api/v1/duty?date={month.first_date}").get_json()["records"] if r["shift_id"]
    )
    body = {
        "guard_id": record["guard_id"],
        "shift_id": record["shift_id"],
        "date": record["date"],
        "field": "status",
        "value": "absent",
        "reason": "left the post to a friend; see incident 12",
    }
    auth = {"Authorization": f"Bearer {client.tokens['police']}"}
    assert client.post("/api/v1/duty/corrections", json=body, headers=auth).status_code == 403
    auth = {"Authorization": f"Bearer {client.tokens['supervisor']}"}
    assert client.post("/api/v1/duty/corrections", json={**body, "reason": " "}, headers=auth).status_code == 422
    done = client.post("/api/v1/duty/corrections", json=body, headers=auth)
    assert done.status_code == 201, done.get_json()
    audit = done.get_json()
    assert (audit["old_value"], audit["new_value"], audit["corrected_by"]) == (
        record["status"],
        "absent",
        "supervisor-1",
    )
    again = get(client, f"/api/v1/duty?date={record['date']}&guard={record['guard_id']}").get_json()["records"]
    assert any(r["status"] == "absent" and r["corrected"] for r in again)


def test_findings_list(client):
    findings = get(client, "/api/v1/findings?limit=500").get_json()["findings"]
    assert findings and all(f["resolved_at"] is None for f in findings)
    assert {f["kind"] for f in get(client, "/api/v1/findings?kind=absent").get_json()["findings"]} <= {"absent"}


def test_duty_cli_imports_recomputes_and_shows(db_url, tmp_path, month):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}, "GUARDPOST_DB": db_url}
    (tmp_path / "shifts.csv").write_text(month.shifts_csv())
    (tmp_path / "roster.csv").write_text(month.roster_csv() + "2026-04-02,nope,G-1\n")

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "guardpost", "duty", *args], env=env, capture_output=True, text=True, timeout=60
        )

    assert run("import-shifts", str(tmp_path / "shifts.csv")).returncode == 0
    bad = run("import-roster", str(tmp_path / "roster.csv"))
    assert bad.returncode == 2 and "nothing was imported" in bad.stderr and "roster.csv:" in bad.stderr
    (tmp_path / "roster.csv").write_text(month.roster_csv())
    assert run("import-roster", str(tmp_path / "roster.csv")).returncode == 0
    done = run("recompute", "--dirty")
    assert done.returncode == 0 and "duty record(s)" in done.stdout
    shown = run("show", month.first_date.isoformat())
    assert shown.returncode == 0 and "absent" in shown.stdout  # nobody punched: the day's shifts are absences
