"""Export jobs through the API with a logged-in user and with a token: scope, progress, download, expiry."""

from __future__ import annotations

import csv
import io
import os
import stat
import time
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.exports.settings import ExportSettings
from server.exports.tables import ExportJob
from server.exports.worker import ExportWorker
from server.models import SecurityEvent, utcnow
from server.web import create_app
from tests.support.exports import EVIL_NAME, MONTH, PASSWORD, seed
from tests.support.web import login, page_csrf


class World:
    """The seeded registry, the web app and a running export worker writing under ``tmp_path``."""

    def __init__(self, url: str, data_dir, start_worker: bool = True):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        self.app = create_app(ServerSettings(db_url=url), engine=self.engine)
        self.settings = ExportSettings(data_dir=data_dir, poll_s=0.05, stale_after_s=5)
        with self.sessions.begin() as s:
            self.tokens = seed(s)
        self.worker = ExportWorker(self.sessions, self.settings).attach(self.app)
        if start_worker:
            self.worker.start()

    def client(self, user: str):
        client = self.app.test_client()
        assert login(client, user, PASSWORD).status_code == 302
        return client

    def bearer(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def job(self, job_id: int) -> ExportJob:
        with self.sessions() as s:
            return s.get(ExportJob, job_id)

    def close(self) -> None:
        self.worker.stop()
        self.engine.dispose()


@pytest.fixture
def world(db_url, tmp_path):
    built = World(db_url, tmp_path / "data")
    yield built
    built.close()


def fetch(client, url: str, headers: dict | None = None):
    """GET a download and close it (the file stays open until the response is closed)."""
    response = client.get(url, headers=headers)
    response.get_data()
    response.close()
    return response


def wait_done(client, url: str, headers: dict | None = None, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = client.get(url, headers=headers).get_json()
        seen.append(job["status"])
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"export not finished after {timeout}s: {seen[-5:]}")


def test_a_logged_in_supervisor_gets_an_xlsx_of_their_site_only(world):
    client = world.client("supervisor")
    body = {"month": MONTH, "format": "xlsx", "locale": "en"}
    refused = client.post("/api/v1/exports", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.get_json()["error"]
    created = client.post("/api/v1/exports", json=body, headers={"X-CSRF-Token": page_csrf(client, "/exports")})
    assert created.status_code == 202, created.get_json()
    job = created.get_json()
    assert job["status"] == "queued" and created.headers["Location"] == f"/api/v1/exports/{job['id']}"
    done = wait_done(client, created.headers["Location"])
    assert done["status"] == "done", done
    assert done["progress"] == {"done": 2, "total": 2, "percent": 100}  # g-evil and g-north work at north
    assert done["rows"] == 31 + 30 and done["links"]["totals"] is None

    download = fetch(client, done["links"]["download"])
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == "attachment; filename=attendance-2026-11-all.xlsx"
    assert download.headers["Cache-Control"] == "no-store"
    book = load_workbook(io.BytesIO(download.data))
    rows = list(book["Attendance"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == done["rows"] and {r[1] for r in rows} == {"g-evil", "g-north"}
    assert {r[6] for r in rows} == {"north", None}  # north's records, and days without duty
    north = [r for r in rows if r[1] == "g-north" and r[6]]
    assert [(r[0].day, r[10], r[15]) for r in north] == [
        (2, "Day", "Late"),
        (3, "Night", "Present"),
        (4, "Day", "Absent"),
        (4, None, "On site, not rostered"),
    ]
    late = north[0]
    assert (late[13].hour, late[13].minute, late[3]) == (8, 7, "110105********1236")  # local time, masked ID
    evil = next(cell for cell in book["Attendance"]["C"] if cell.value and "HYPERLINK" in cell.value)
    assert evil.data_type == "s" and evil.value == "'" + EVIL_NAME
    totals = {r[0]: r for r in book["Totals"].iter_rows(min_row=2, values_only=True)}
    assert set(totals) == {"g-evil", "g-north"} and totals["g-north"][4:9] == (3, 3, 1, 0, 1)

    files = list((world.settings.export_dir).iterdir())
    assert [f.name for f in files] == [f"job-{job['id']}.xlsx"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(world.settings.export_dir.stat().st_mode) == 0o700
    with world.sessions() as s:
        kinds = [e.kind for e in s.scalars(select(SecurityEvent).where(SecurityEvent.user_name == "supervisor"))]
    assert "export_requested" in kinds and "export_downloaded" in kinds


def test_a_token_gets_a_csv_with_its_totals_file(world):
    client, headers = world.app.test_client(), world.bearer("manager")
    created = client.post("/api/v1/exports", json={"month": MONTH, "format": "csv", "company": "acme"}, headers=headers)
    assert created.status_code == 202
    done = wait_done(client, created.headers["Location"], headers)
    assert done["status"] == "done" and done["locale"] == "zh"
    rows_file = fetch(client, done["links"]["download"], headers)
    assert rows_file.headers["Content-Type"].startswith("text/csv")
    text = rows_file.data.decode("utf-8")
    assert text.startswith("\ufeff日期,保安员编号")  # BOM: Excel on Chinese Windows reads UTF-8
    parsed = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert {r["保安员编号"] for r in parsed} == {"g-north", "g-evil", "g-south"}
    assert {r["驻勤点编号"] for r in parsed} == {"north", "south", ""}
    assert {r["姓名"] for r in parsed if r["保安员编号"] == "g-south"} == {"'+1+1"}
    totals = fetch(client, done["links"]["totals"], headers)
    assert totals.headers["Content-Disposition"] == "attachment; filename=attendance-2026-11-company-acme.totals.csv"
    summary = list(csv.DictReader(io.StringIO(totals.data.decode("utf-8-sig"))))
    assert [r["保安员编号"] for r in summary] == ["g-evil", "g-north", "g-south"]
    assert fetch(client, done["links"]["download"] + "?part=other", headers).status_code == 400


def test_a_site_supervisor_gets_403_on_another_sites_export_and_it_is_logged(world):
    client, headers = world.app.test_client(), world.bearer("supervisor")
    for body in ({"site": "south"}, {"guard": "g-bj"}, {"company": "acme"}):
        refused = client.post("/api/v1/exports", json={"month": MONTH, "format": "xlsx", **body}, headers=headers)
        assert refused.status_code == 403, body
    assert (
        "site south is outside this user's scope"
        in client.post(
            "/api/v1/exports", json={"month": MONTH, "format": "xlsx", "site": "south"}, headers=headers
        ).get_json()["error"]
    )
    with world.sessions() as s:
        denied = s.scalars(select(SecurityEvent).where(SecurityEvent.kind == "denied")).all()
        assert {e.user_name for e in denied} == {"supervisor"} and {e.path for e in denied} == {"/api/v1/exports"}
        assert s.scalar(select(ExportJob)) is None
    own = client.post("/api/v1/exports", json={"month": MONTH, "format": "xlsx", "site": "north"}, headers=headers)
    assert own.status_code == 202


def test_users_see_only_their_own_jobs_and_admins_see_all(world):
    client = world.app.test_client()
    created = client.post(
        "/api/v1/exports", json={"month": MONTH, "format": "csv"}, headers=world.bearer("supervisor")
    ).get_json()
    done = wait_done(client, f"/api/v1/exports/{created['id']}", world.bearer("supervisor"))
    for user in ("supervisor2", "manager", "police"):
        assert client.get(f"/api/v1/exports/{done['id']}", headers=world.bearer(user)).status_code == 403
        assert client.get(done["links"]["download"], headers=world.bearer(user)).status_code == 403
        assert client.get("/api/v1/exports", headers=world.bearer(user)).get_json() == {"jobs": []}
    admin = world.bearer("admin")
    assert client.get(f"/api/v1/exports/{done['id']}", headers=admin).get_json()["requested_by"] == "supervisor"
    assert fetch(client, done["links"]["download"], admin).status_code == 200
    assert [j["id"] for j in client.get("/api/v1/exports", headers=admin).get_json()["jobs"]] == [done["id"]]
    assert client.get("/api/v1/exports?mine=1", headers=admin).get_json() == {"jobs": []}
    assert client.get("/api/v1/exports/999", headers=admin).status_code == 404
    assert client.get("/api/v1/exports").status_code == 401


def test_police_can_export_their_jurisdiction(world):
    client, headers = world.app.test_client(), world.bearer("police")
    created = client.post("/api/v1/exports", json={"month": MONTH, "format": "xlsx"}, headers=headers)
    assert created.status_code == 202
    done = wait_done(client, created.headers["Location"], headers)
    book = load_workbook(io.BytesIO(fetch(client, done["links"]["download"], headers).data))
    sites = {r[6] for r in book["Attendance"].iter_rows(min_row=2, values_only=True)}
    assert sites == {"north", "south", None}  # not Beijing
    refused = client.post("/api/v1/exports", json={"month": MONTH, "format": "csv", "site": "bj"}, headers=headers)
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"month": "2026-13", "format": "xlsx"}, 400, "month must look like 2026-11"),
        ({"month": MONTH, "format": "pdf"}, 400, "format"),
        ({"month": MONTH, "format": "xlsx", "site": "north", "guard": "g-north"}, 400, "at most one"),
        ({"month": MONTH, "format": "xlsx", "site": "nowhere"}, 404, "no site nowhere"),
        (["not", "an", "object"], 400, "send a JSON object"),
    ],
)
def test_bad_requests_get_one_clear_line(world, body, status, message):
    answer = world.app.test_client().post("/api/v1/exports", json=body, headers=world.bearer("admin"))
    assert answer.status_code == status and message in answer.get_json()["error"]


def test_too_many_open_exports_are_refused(db_url, tmp_path):
    world = World(db_url, tmp_path / "data", start_worker=False)  # nothing runs: jobs stay queued
    try:
        client, headers = world.app.test_client(), world.bearer("manager")
        body = {"month": MONTH, "format": "csv"}
        for _ in range(world.settings.max_open_per_user):
            assert client.post("/api/v1/exports", json=body, headers=headers).status_code == 202
        refused = client.post("/api/v1/exports", json=body, headers=headers)
        assert refused.status_code == 429 and "still queued or running" in refused.get_json()["error"]
        job = client.get("/api/v1/exports", headers=headers).get_json()["jobs"][0]
        assert fetch(client, f"/api/v1/exports/{job['id']}/download", headers).status_code == 409
    finally:
        world.close()


def test_jobs_left_running_by_a_crashed_server_are_queued_again_at_start(db_url, tmp_path):
    world = World(db_url, tmp_path / "data", start_worker=False)
    try:
        client, headers = world.app.test_client(), world.bearer("manager")
        first = client.post("/api/v1/exports", json={"month": MONTH, "format": "xlsx"}, headers=headers).get_json()
        second = client.post("/api/v1/exports", json={"month": MONTH, "format": "csv"}, headers=headers).get_json()
        # A server on this host died mid-export (its pid is gone); its heartbeat is fresh, so only the pid tells.
        dead = os.fork()
        if dead == 0:
            os._exit(0)
        os.waitpid(dead, 0)
        crashed = f"{world.worker.id.host}:{dead}:0badf00d"
        stale = utcnow() - timedelta(seconds=2 * world.settings.stale_after_s)
        with world.sessions.begin() as s:
            s.execute(
                update(ExportJob)
                .where(ExportJob.id == first["id"])
                .values(status="running", worker=crashed, heartbeat_at=utcnow(), attempts=1, progress_done=1)
            )
            # ...and one that ran on another machine and stopped reporting; it has been tried too often.
            s.execute(
                update(ExportJob)
                .where(ExportJob.id == second["id"])
                .values(status="running", worker="elsewhere:1:00000000", heartbeat_at=stale, attempts=3)
            )
        work = world.settings.export_dir / f"tmp-{first['id']}-0badf00d"
        work.mkdir(parents=True)
        (work / f"job-{first['id']}.xlsx").write_bytes(b"half a file")
        world.worker.start()
        done = wait_done(client, f"/api/v1/exports/{first['id']}", headers)
        assert done["status"] == "done" and world.job(first["id"]).attempts == 2
        assert load_workbook(io.BytesIO(fetch(client, done["links"]["download"], headers).data)).sheetnames
        assert not work.exists()  # the crashed run's half-written file is gone
        failed = client.get(f"/api/v1/exports/{second['id']}", headers=headers).get_json()
        assert failed["status"] == "failed" and "stopped 3 times" in failed["error"]
    finally:
        world.close()


def test_files_expire_and_then_answer_410(world):
    client, headers = world.app.test_client(), world.bearer("admin")
    created = client.post("/api/v1/exports", json={"month": MONTH, "format": "csv"}, headers=headers).get_json()
    done = wait_done(client, f"/api/v1/exports/{created['id']}", headers)
    job = world.job(done["id"])
    assert job.expires_at - job.finished_at == timedelta(days=world.settings.keep_days)
    files = sorted(p.name for p in world.settings.export_dir.iterdir())
    assert files == [f"job-{job.id}.csv", f"job-{job.id}.totals.csv"]
    with world.sessions.begin() as s:
        s.execute(update(ExportJob).where(ExportJob.id == job.id).values(expires_at=utcnow() - timedelta(seconds=1)))
    world.worker.wake()
    deadline = time.monotonic() + 10
    while world.job(job.id).status != "expired" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert world.job(job.id).status == "expired" and list(world.settings.export_dir.iterdir()) == []
    gone = fetch(client, done["links"]["download"], headers)
    assert gone.status_code == 410 and "ask for the export again" in gone.get_json()["error"]


def test_a_guard_export_holds_only_that_guard(world):
    client, headers = world.app.test_client(), world.bearer("supervisor")
    created = client.post(
        "/api/v1/exports", json={"month": MONTH, "format": "xlsx", "guard": "g-north"}, headers=headers
    ).get_json()
    done = wait_done(client, f"/api/v1/exports/{created['id']}", headers)
    book = load_workbook(io.BytesIO(fetch(client, done["links"]["download"], headers).data))
    assert {r[1] for r in book["Attendance"].iter_rows(min_row=2, values_only=True)} == {"g-north"}
    assert done["file_name"] == "attendance-2026-11-guard-g-north.xlsx" and done["rows"] == 31
