"""A real `guardpost server` process on a free port, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from guardpost.broker import free_port
from tests.support.services import wait_for
from tests.support.stack import purge_session, unique


@dataclass(frozen=True)
class ServerProcess:
    url: str
    log: Path
    proc: subprocess.Popen


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@contextmanager
def guardpost_server(tmp_path: Path, db_url: str, mqtt_url: str, key_file: Path) -> Iterator[ServerProcess]:
    """Serve on localhost: browsers keep Secure (__Host-) cookies there as on HTTPS."""
    port = free_port()
    client_id = unique("ingest-e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    env |= {
        "GUARDPOST_DB": db_url,
        "GUARDPOST_MQTT": mqtt_url,
        "GUARDPOST_BIND": f"127.0.0.1:{port}",
        "GUARDPOST_KEY_FILE": str(key_file),
        "GUARDPOST_INGEST_CLIENT_ID": client_id,
        "GUARDPOST_DATA_DIR": str(tmp_path / "data"),
    }
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "guardpost", "server"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://localhost:{port}"
    try:
        wait_for(lambda: _healthy(url) or proc.poll() is not None, 60, "the server to answer")
        assert proc.poll() is None, log.read_text()
        yield ServerProcess(url, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        purge_session(mqtt_url, client_id)
