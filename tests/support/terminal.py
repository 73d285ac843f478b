"""A real gate terminal for end-to-end tests: enrolled sample guards, a config file and the agent process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from biometrics.faces import FaceEncoder
from guardpost.samples import SAMPLE_GUARDS, write_gate_frames
from server.crypto import generate_key_file
from server.enrollment import enroll_photo
from server.registry import add_guard
from tests.support.stack import Stack, unique


def enrol_sample_guards(stack: Stack, site_id: str) -> dict[str, str]:
    """Sample guards (ids made unique per test) enrolled from registry-package photos; returns id -> sample id."""
    encoder = FaceEncoder()
    ids = {}
    with stack.sessions() as session:
        for sample_id, name, photo in SAMPLE_GUARDS:
            guard_id = unique(sample_id)
            add_guard(session, guard_id, name, [site_id], face_consent=True)
            enroll_photo(session, stack.cipher, encoder, guard_id, photo())
            ids[guard_id] = sample_id
        session.commit()
    return ids


def gate_frames(folder: Path) -> tuple[Path, list[str]]:
    """Frames for a simulated gate and, in order, the sample guard each face frame shows."""
    paths = write_gate_frames(folder)
    ids = [guard.guard_id for guard in SAMPLE_GUARDS]
    expected = [next(g for g in ids if f"-{g}-" in p.name) for p in paths if "empty" not in p.stem]
    return folder, expected


def write_config(
    folder: Path,
    *,
    site_id: str,
    device_id: str,
    secret: str,
    mqtt_url: str,
    server_url: str,
    frames: Path,
    max_frames: int = 8,
    max_fps: float = 30,
    extra: str = "",
) -> Path:
    """A terminal that decides on every frame: each test frame is a separate person at the gate."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "secret").write_text(secret)
    generate_key_file(folder / "gallery.key")
    path = folder / "terminal.toml"
    path.write_text(
        f'''device_id = "{device_id}"
site_id = "{site_id}"
secret_file = "secret"
state_dir = "state"
heartbeat_s = 2

[mqtt]
url = "{mqtt_url}"
resend_after_s = 5

[server]
url = "{server_url}"

[source]
spec = "{frames}"
max_fps = {max_fps}

[recognition]
cooldown_s = 0

[presentation]
consensus_frames = 1
max_frames = {max_frames}
settle_s = 0

[liveness]
challenge = "none"

[gallery]
key_file = "gallery.key"

[clock]
sync_check = "assume_synced"
{extra}
'''
    )
    return path


def start_agent(config: Path, *extra: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")} | (env_extra or {})
    # A log file, not a pipe: nobody reads a pipe while the test waits, and a full one blocks the agent.
    with open(agent_log(config), "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "guardpost", "agent", "--config", str(config), *extra],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def agent_log(config: Path) -> Path:
    return config.parent / "agent.log"


def outbox_depth(config: Path) -> int:
    path = config.parent / "state" / "outbox.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def clear_retained_status(mqtt_url: str, site_id: str, device_id: str) -> None:
    """A test terminal's retained status would otherwise stay on a shared broker for every later run."""
    from protocol.topics import status_topic
    from tests.support.mqtt_client import TestClient

    client = TestClient(mqtt_url)
    client.publish(status_topic(site_id, device_id), b"", retain=True)
    client.close()
