"""``guardpost demo``: embedded broker, server on SQLite and one simulated gate, on this machine."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from guardpost.broker import free_port
from guardpost.samples import SAMPLE_GUARDS, write_gate_frames

SITE, DEVICE = "demo-site", "gate-1"
# A guard without face data checks in with the QR/card number of their guard certificate.
CARD_GUARD, CARD_NAME, CARD_NUMBER = "G-WANG", "Wang Fang", "GD2026000123"
CARD_EVERY_S = 15.0


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "guardpost", *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server did not answer at {url} within {timeout:.0f}s")


def _prepare(var: Path, env: dict[str, str]) -> tuple[str, str]:
    """Fresh registry: terminal, two sample guards enrolled from registry-package photos, an admin.

    Returns the admin's password and API token, both random: the demo has no default credentials.
    """
    from biometrics.faces import FaceEncoder
    from server.credentials import add_credential
    from server.crypto import generate_key_file, load_cipher
    from server.db import make_engine, make_sessionmaker
    from server.enrollment import enroll_photo
    from server.registry import add_device, add_guard
    from server.users import add_user

    generate_key_file(var / "server.key")
    generate_key_file(var / "gallery.key")
    engine = make_engine(env["GUARDPOST_DB"])
    encoder = FaceEncoder()
    with make_sessionmaker(engine)() as session:
        _terminal, secret = add_device(session, SITE, DEVICE)
        cipher = load_cipher(var / "server.key")
        for guard_id, name, photo in SAMPLE_GUARDS:
            add_guard(session, guard_id, name, [SITE], face_consent=True)
            enroll_photo(session, cipher, encoder, guard_id, photo())
        add_guard(session, CARD_GUARD, CARD_NAME, [SITE])
        add_credential(session, cipher, CARD_GUARD, CARD_NUMBER, kind="certificate")
        password = secrets.token_urlsafe(12)
        _user, token = add_user(session, "demo-admin", "admin", password=password)
        session.commit()
    engine.dispose()
    secret_file = var / f"{DEVICE}.secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    return password, token


def _agent_config(var: Path, mqtt_url: str, server_url: str, frames: Path, display_port: int) -> Path:
    path = var / f"{DEVICE}.toml"
    path.write_text(
        f'''# Simulated gate written by `guardpost demo`; see device_configs/ for real terminals.
device_id = "{DEVICE}"
site_id = "{SITE}"
secret_file = "{DEVICE}.secret"
state_dir = "agent-state"
heartbeat_s = 5

[mqtt]
url = "{mqtt_url}"

[server]
url = "{server_url}"
gallery_refresh_s = 10

[source]
spec = "{frames.name}"
loop = true
max_fps = 0.5

[recognition]
cooldown_s = 0

[presentation]
# Each simulated frame, two seconds apart, is a new guard at the gate.
consensus_frames = 1
settle_s = 0

[liveness]
# Photos cannot blink; a real terminal keeps the default blink challenge.
challenge = "none"

[cards]
# The demo "presents" a certificate by appending its number to this file, as a reader would type it.
reader = "lines:card-reads.txt"

[display]
enabled = true
bind = "127.0.0.1:{display_port}"

[gallery]
key_file = "gallery.key"

[clock]
# A PC's kernel often reports "unsynchronised" even when its time is right; a real terminal uses "kernel".
sync_check = "assume_synced"
'''
    )
    return path


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo the same way Ctrl-C does


def run_demo(var: Path, http_port: int = 0) -> int:
    if var.exists():
        shutil.rmtree(var)  # every demo starts from a clean registry
    var.mkdir(parents=True)
    var = var.resolve()
    mqtt_port, http_port = free_port(), http_port or free_port()
    mqtt_url, server_url = f"mqtt://127.0.0.1:{mqtt_port}", f"http://127.0.0.1:{http_port}"
    env = {
        **os.environ,
        "GUARDPOST_DB": f"sqlite:///{var / 'guardpost.db'}",
        "GUARDPOST_MQTT": mqtt_url,
        "GUARDPOST_BIND": f"127.0.0.1:{http_port}",
        "GUARDPOST_KEY_FILE": str(var / "server.key"),
        "GUARDPOST_DATA_DIR": str(var / "data"),  # export files
    }
    print("preparing the demo registry (enrolling two sample guards)...", flush=True)
    password, token = _prepare(var, env)
    frames = var / "gate-frames"
    write_gate_frames(frames)
    display_port = free_port()
    card_reads = var / "card-reads.txt"
    card_reads.touch()
    config = _agent_config(var, mqtt_url, server_url, frames, display_port)

    procs: list[subprocess.Popen] = []
    try:
        procs.append(_spawn(["broker", "--port", str(mqtt_port)], env, var / "broker.log"))
        procs.append(server := _spawn(["server"], env, var / "server.log"))
        _wait_http(f"{server_url}/api/v1/health", server)
        procs.append(_spawn(["agent", "--config", str(config)], env, var / "agent.log"))
        print(f"\nDashboard: {server_url}/login (user demo-admin, password {password})", flush=True)
        print(f"API token for scripts: {token}", flush=True)
        print(f"Gate screen: http://127.0.0.1:{display_port}/\n", flush=True)
        print(f"Logs in {var}. Press Ctrl-C to stop.", flush=True)
        # Explicitly: a shell starts background jobs with SIGINT ignored, and Python then keeps ignoring it.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        next_card = time.monotonic() + CARD_EVERY_S / 2
        while all(p.poll() is None for p in procs):
            if time.monotonic() >= next_card:
                with open(card_reads, "a") as reads:
                    reads.write(CARD_NUMBER + "\n")
                next_card += CARD_EVERY_S
            time.sleep(0.5)
        dead = next(p for p in procs if p.poll() is not None)
        print(f"error: a demo process exited ({' '.join(dead.args[3:5])}, code {dead.returncode}); see {var}/*.log")
        return 3
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"error: {exc} ({var}/server.log)")
        return 3
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
