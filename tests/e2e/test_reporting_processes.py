"""Reporting as separate processes: an adapter killed mid-send loses and duplicates nothing; the server runs it too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest
from sqlalchemy import select

from guardpost.broker import free_port
from server.db import make_engine, make_sessionmaker
from server.reporting.tables import ReportBatch
from tests.support.reporting import ID_NUMBERS, SECRET, Registry, write_config
from tests.support.services import port_open, wait_for

pytestmark = pytest.mark.slow


def guardpost(log_path, *args: str, env: dict[str, str]) -> subprocess.Popen:
    """A guardpost process writing to ``log_path`` (a file: a pipe nobody reads would fill up and block it)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "guardpost", *args], env={**base, **env}, stdout=log, stderr=subprocess.STDOUT
        )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def world(db_url):
    engine = make_engine(db_url)
    registry = Registry(make_sessionmaker(engine))
    yield registry
    engine.dispose()


def all_batches(world: Registry) -> list[ReportBatch]:
    with world.sessions() as s:
        return list(s.scalars(select(ReportBatch).order_by(ReportBatch.id)))


def received(port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/batches", timeout=5) as answer:
        return json.load(answer)["batches"]


def start_receiver(tmp_path, port: int, *extra: str) -> subprocess.Popen:
    proc = guardpost(
        tmp_path / "receiver.log",
        "reporting",
        "receiver",
        "--port",
        str(port),
        "--secret-file",
        str(tmp_path / "reporting.secret"),
        "--store",
        str(tmp_path / "store"),
        *extra,
        env={},
    )
    wait_for(lambda: port_open("127.0.0.1", port), 30, "the reference receiver")
    return proc


def test_an_adapter_killed_mid_send_resumes_and_the_batch_arrives_once(world, db_url, tmp_path):
    port = free_port()
    config = write_config(tmp_path, f"http://127.0.0.1:{port}/upload", replace={"connect_s": "1", "read_s": "8"})
    env = {"GUARDPOST_DB": db_url, "GUARDPOST_KEY": world.key.decode()}
    receiver = start_receiver(tmp_path, port, "--hang-first", "1", "--hang-seconds", "60")
    adapter_log = tmp_path / "adapter.log"
    adapter = guardpost(adapter_log, "reporting", "run", "--config", str(config), env=env)
    try:
        # The first batch is stored by the province, but its receipt never reaches the adapter...
        wait_for(lambda: len(list((tmp_path / "store").glob("*.json"))) == 1, 60, "the first batch stored")
        first = all_batches(world)[0]
        assert (first.status, first.attempts) == ("sending", 1)
        adapter.kill()  # ...because the adapter dies (SIGKILL: no clean-up of any kind) while waiting for it.
        adapter.wait(timeout=10)
        assert all_batches(world)[0].status == "sending"

        adapter = guardpost(adapter_log, "reporting", "run", "--config", str(config), env=env)
        # After the dead sender's lease runs out the batch goes again; the province answers with the first receipt.
        wait_for(lambda: all(b.status == "accepted" for b in all_batches(world)), 90, "every batch accepted")
        batches = all_batches(world)
        assert len(batches) == 8
        stored = {b["batch_id"]: b["receipt"] for b in received(port)}
        assert sorted(stored) == sorted(b.batch_id for b in batches)  # each batch exactly once
        first = batches[0]
        assert first.attempts == 2 and first.receipt["duplicate"] is True
        assert first.receipt_id == stored[first.batch_id]["receipt_id"]
        assert all(b.attempts == 1 for b in batches[1:])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/records/BAY_JBXX", timeout=5) as answer:
            guards = json.load(answer)["records"]
        assert {k: r["version"] for k, r in guards.items()} == {"G-1": 1, "G-2": 1}
    finally:
        stop(adapter)
        stop(receiver)
    log = adapter_log.read_text("utf-8")
    assert adapter.returncode == 0, log  # SIGTERM ends the loop cleanly
    assert "(already received from an earlier attempt)" in log and SECRET not in log and ID_NUMBERS["G-1"] not in log


def test_the_server_runs_reporting_when_a_config_is_set(world, db_url, tmp_path):
    port, http_port = free_port(), free_port()
    config = write_config(tmp_path, f"http://127.0.0.1:{port}/upload")
    receiver = start_receiver(tmp_path, port)
    env = {
        "GUARDPOST_DB": db_url,
        "GUARDPOST_KEY": world.key.decode(),
        "GUARDPOST_BIND": f"127.0.0.1:{http_port}",
        "GUARDPOST_REPORTING_CONFIG": str(config),
    }
    server_log = tmp_path / "server.log"
    server = guardpost(server_log, "server", "--no-ingest", env=env)
    try:
        wait_for(
            lambda: len(all_batches(world)) == 8 and all(b.status == "accepted" for b in all_batches(world)),
            90,
            "the server's reporting thread to deliver every batch",
        )
        assert len(received(port)) == 8
    finally:
        stop(server)
        stop(receiver)
    assert server.returncode == 0, server_log.read_text("utf-8")
