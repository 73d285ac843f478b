"""``guardpost reporting`` as an operator runs it: check, run --once, status, resend, and one-line failures."""

from __future__ import annotations

import json

import pytest

from server.db import make_engine, make_sessionmaker
from tests.integration.test_cli import run
from tests.support.reporting import SECRET, Registry, receiver, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def env(db_url, tmp_path):
    engine = make_engine(db_url)
    registry = Registry(make_sessionmaker(engine))
    engine.dispose()
    return {"GUARDPOST_DB": db_url, "GUARDPOST_KEY": registry.key.decode()}


def test_check_validates_the_config_and_its_secret(env, tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9/upload")
    out = run("reporting", "check", "--config", str(config), env=env)
    assert out.returncode == 0, out.stderr
    assert "valid; province 440000" in out.stdout and "guards -> BAY_JBXX: 12 item(s)" in out.stdout
    assert "up to 3 attempts, waiting about 1, 2 s" in out.stdout and SECRET not in out.stdout

    missing = run("reporting", "check", env=env)
    assert missing.returncode == 2
    assert missing.stderr == (
        "error: no reporting config: pass --config FILE or set GUARDPOST_REPORTING_CONFIG (see docs/reporting.md)\n"
    )
    (tmp_path / "reporting.secret").write_text("short\n")
    short = run("reporting", "check", "--config", str(config), env=env)
    assert short.returncode == 2 and "shorter than 16 characters" in short.stderr
    assert short.stderr.count("\n") == 1

    config.write_text(config.read_text("utf-8").replace("batch_size = 200", "batch_size = 0"), "utf-8")
    bad = run("reporting", "run", "--once", "--config", str(config), env=env)
    assert bad.returncode == 2 and bad.stderr.startswith(f"error: reporting config {config}: batch_size:")


def test_run_once_status_and_resend(env, tmp_path):
    with receiver() as (url, store):
        config = write_config(tmp_path, url)
        config.write_text(config.read_text("utf-8").replace('XM = "name"', 'XINGMING = "name"'), "utf-8")
        first = run("reporting", "run", "--once", "--config", str(config), env=env)
        assert first.returncode == 1, first.stderr  # a refused batch needs someone: the exit code says so
        assert "batch 1 (guards, C-01, 1 record(s)): refused - HTTP 422: G-1.XM: required item missing" in first.stdout
        assert "round done: 8 batch(es) built, 8 sent" in first.stdout

        status = run("reporting", "status", env=env)
        assert status.returncode == 0 and status.stdout.startswith("batches: 6 accepted, 2 refused\n")
        assert "guards: last checked" in status.stdout
        listed = json.loads(run("reporting", "status", "--json", "--status", "refused", env=env).stdout)
        assert listed["counts"] == {"accepted": 6, "refused": 2}
        assert [b["id"] for b in listed["batches"]] == [2, 1]

        config.write_text(config.read_text("utf-8").replace('XINGMING = "name"', 'XM = "name"'), "utf-8")
        batch_id = listed["batches"][1]["batch_id"]
        for ref in ("2", batch_id):
            out = run("reporting", "resend", ref, "--by", "ops-wang", env=env)
            assert out.returncode == 0 and "queued again" in out.stdout
        again = run("reporting", "resend", "1", env=env)
        assert again.returncode == 2 and again.stderr == (
            "error: batch 1 is pending; only refused or failed batches can be re-sent\n"
        )
        assert run("reporting", "resend", "404", env=env).stderr.startswith("error: no batch 404;")

        second = run("reporting", "run", "--once", "--config", str(config), env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.count(": accepted - receipt") == 2
        assert len(store.batches) == 8
        after = json.loads(run("reporting", "status", "--json", env=env).stdout)
        assert after["counts"] == {"accepted": 8}
        assert {b["resent_by"] for b in after["batches"] if b["kind"] == "guards"} == {"ops-wang"}
