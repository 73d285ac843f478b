"""The guardpost command as a user runs it: registry set-up, enrolment, and one-line failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from guardpost.samples import grace_hopper_path, no_face_rgb

pytestmark = pytest.mark.slow


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    return subprocess.run(
        [sys.executable, "-m", "guardpost", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def env(db_url, tmp_path):
    key = tmp_path / "server.key"
    assert run("keygen", str(key)).returncode == 0
    return {"GUARDPOST_DB": db_url, "GUARDPOST_KEY_FILE": str(key)}


def test_devices_add_prints_the_secret_once_as_json(env):
    out = run("devices", "add", "site-a", "gate-1", "--json", env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["device_id"] == "gate-1" and data["site_id"] == "site-a" and len(data["secret"]) == 64
    again = run("devices", "add", "site-a", "gate-1", env=env)
    assert again.returncode == 2 and again.stderr.strip() == "error: terminal gate-1 is already registered"


def test_users_add_prints_a_token_and_refuses_weak_passwords(env, tmp_path):
    assert run("sites", "add", "site-a", "--tz", "Asia/Shanghai", env=env).returncode == 0
    unscoped = run("users", "add", "alice", "--role", "supervisor", "--no-password", env=env)
    assert unscoped.returncode == 2 and "a supervisor needs at least one --site" in unscoped.stderr
    out = run("users", "add", "alice", "--role", "supervisor", "--site", "site-a", "--no-password", "--json", env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["name"] == "alice" and data["role"] == "supervisor" and len(data["token"]) >= 40
    assert data["can_log_in"] is False
    weak = tmp_path / "weak"
    weak.write_text("Password1234!\n")
    refused = run("users", "add", "bob", "--role", "admin", "--password-file", str(weak), env=env)
    assert refused.returncode == 2 and "well-known default" in refused.stderr
    strong = tmp_path / "strong"
    strong.write_text("blue harbour 7 lanterns\n")
    assert run("users", "passwd", "alice", "--password-file", str(strong), env=env).returncode == 0
    listed = json.loads(run("users", "list", "--json", env=env).stdout)
    assert listed == [
        {"name": "alice", "role": "supervisor", "scope": "sites site-a", "password": True, "disabled": False}
    ]


def test_guards_add_and_enroll_accepts_one_face_and_refuses_none(env, tmp_path):
    assert run("guards", "add", "G-1", "--name", "Grace Hopper", "--site", "site-a", env=env).returncode == 0
    refused = run("enroll", "G-1", str(grace_hopper_path()), env=env)
    assert refused.returncode == 1 and "no recorded consent" in refused.stderr
    assert run("guards", "consent", "G-1", "--given", env=env).returncode == 0
    empty = tmp_path / "empty.png"
    Image.fromarray(no_face_rgb()).save(empty)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = run("enroll", "G-1", str(grace_hopper_path()), str(empty), str(broken), env=env)
    assert out.returncode == 1
    assert "[1/3]" in out.stdout and "enrolled" in out.stdout
    assert "empty.png: found 0 faces" in out.stderr
    assert "cannot read image" in out.stderr and "Traceback" not in out.stderr


def test_enroll_without_a_key_says_how_to_make_one(env):
    no_key = {**env, "GUARDPOST_KEY_FILE": ""}
    out = run("enroll", "G-1", str(grace_hopper_path()), env=no_key)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: no template encryption key") and "guardpost keygen" in out.stderr


def test_keygen_never_overwrites(tmp_path):
    key = tmp_path / "k"
    assert run("keygen", str(key)).returncode == 0
    before = key.read_bytes()
    out = run("keygen", str(key))
    assert out.returncode == 2 and key.read_bytes() == before
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_agent_with_a_broken_config_fails_in_one_line(tmp_path):
    bad = tmp_path / "gate.toml"
    bad.write_text('device_id = "gate-1"\nsite_id = "s"\n[recognition]\nthreshold = "high"\n')
    out = run("agent", "--config", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: config {bad}: recognition.threshold: "
        "Input should be a valid number, unable to parse string as a number"
    ]


def test_agent_with_a_missing_folder_source_fails_clearly(tmp_path):
    (tmp_path / "secret").write_text("x" * 64)
    assert run("keygen", str(tmp_path / "gallery.key")).returncode == 0
    cfg = tmp_path / "gate.toml"
    cfg.write_text(
        'device_id = "gate-1"\nsite_id = "s"\nsecret_file = "secret"\nstate_dir = "state"\n'
        '[gallery]\nkey_file = "gallery.key"\n[source]\nspec = "no-such-folder"\n'
    )
    out = run("agent", "--config", str(cfg))
    assert out.returncode == 3, out.stderr
    assert "no-such-folder" in out.stderr and "Traceback" not in out.stderr


def test_server_without_a_key_refuses_to_start(db_url):
    out = run("server", "--no-ingest", env={"GUARDPOST_DB": db_url}, timeout=60)
    assert out.returncode == 2 and "no template encryption key" in out.stderr


def test_server_with_an_unreachable_database_fails_in_one_line(tmp_path):
    key = tmp_path / "k"
    run("keygen", str(key))
    out = run(
        "server",
        "--no-ingest",
        "--db",
        "postgresql://nobody@127.0.0.1:1/none",
        env={"GUARDPOST_KEY_FILE": str(key)},
        timeout=60,
    )
    assert out.returncode == 3, out.stderr
    assert out.stderr.strip().startswith("error: cannot use the database") and "Traceback" not in out.stderr
