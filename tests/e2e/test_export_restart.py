"""A real server killed (SIGKILL) in the middle of an export: restarted, it finishes the job and leaves no debris."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from benchmarks.export_data import populate
from guardpost.broker import free_port
from server.crypto import generate_key_file
from server.db import make_engine, make_sessionmaker
from server.exports.tables import ExportJob
from server.users import add_user
from tests.support.services import port_open, wait_for

pytestmark = pytest.mark.slow
GUARDS, MONTH = 400, "2026-01"


def start_server(env: dict[str, str], port: int, log) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardpost", "server", "--no-ingest", "--no-monitor"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, 60, "the server to listen")
    assert proc.poll() is None, "the server exited at start"
    return proc


def call(url: str, token: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as response:
        raw = response.read()
        return json.loads(raw) if response.headers.get_content_type() == "application/json" else raw


def test_a_killed_server_finishes_the_export_after_restart(db_url, tmp_path):
    engine = make_engine(db_url)
    populate(engine, GUARDS, 8, MONTH)
    with make_sessionmaker(engine).begin() as session:
        _, token = add_user(session, "exporter", "manager", company_id="co-0")
    key, data_dir, port = tmp_path / "server.key", tmp_path / "data", free_port()
    generate_key_file(key)
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    env = base | {
        "GUARDPOST_DB": db_url,
        "GUARDPOST_KEY_FILE": str(key),
        "GUARDPOST_BIND": f"127.0.0.1:{port}",
        "GUARDPOST_DATA_DIR": str(data_dir),
        "GUARDPOST_EXPORT_THREADS": "1",
    }
    url = f"http://127.0.0.1:{port}/api/v1/exports"
    with open(tmp_path / "server.log", "ab") as log:
        server = start_server(env, port, log)
        try:
            job = call(url, token, {"month": MONTH, "format": "xlsx"})

            def running_with_progress():
                state = call(f"{url}/{job['id']}", token)
                return state["status"] == "running" and 0 < state["progress"]["done"] < state["progress"]["total"]

            wait_for(running_with_progress, 60, "the export to be under way")
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(timeout=10)
        with make_sessionmaker(engine)() as session:
            left = session.scalar(select(ExportJob).where(ExportJob.id == job["id"]))
            assert left.status == "running" and left.attempts == 1  # as the crash left it
        assert [p.name for p in (data_dir / "exports").iterdir()] == [
            p.name for p in (data_dir / "exports").glob("tmp-*")
        ]

        server = start_server(env, port, log)
        try:
            wait_for(lambda: call(f"{url}/{job['id']}", token)["status"] in ("done", "failed"), 120, "the export")
            done = call(f"{url}/{job['id']}", token)
            assert done["status"] == "done", (tmp_path / "server.log").read_text()[-3000:]
            workbook = call(f"{url}/{job['id']}/download", token)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    with make_sessionmaker(engine)() as session:
        assert session.get(ExportJob, job["id"]).attempts == 2
    engine.dispose()
    book = load_workbook(io.BytesIO(workbook), read_only=True)
    guards = {row[1] for row in book["Attendance"].iter_rows(min_row=2, values_only=True)}
    book.close()
    assert len(guards) == GUARDS // 2 and done["rows"] == GUARDS // 2 * 31  # company co-0 guards half the sites
    assert sorted(p.name for p in (data_dir / "exports").iterdir()) == [f"job-{job['id']}.xlsx"]
