"""Real services for tests: the broker and database from MQTT_URL / DATABASE_URL, or embedded ones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

from sqlalchemy import create_engine, text

from guardpost.broker import free_port
from server.config import normalise_db_url


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def start_embedded_broker(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardpost", "broker", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: port_open("127.0.0.1", port), 30, f"embedded broker on port {port}")
    return proc


@contextmanager
def mqtt_broker() -> Iterator[str]:
    """MQTT_URL when set (and it must answer: CI never skips), else an embedded amqtt broker."""
    url = os.environ.get("MQTT_URL")
    if url:
        parts = urlsplit(url)
        if not port_open(parts.hostname or "127.0.0.1", parts.port or 1883):
            raise RuntimeError(f"MQTT_URL={url} is set but no broker answers there; start it or unset MQTT_URL")
        yield url
        return
    port = free_port()
    proc = start_embedded_broker(port)
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def database(tmp_dir) -> Iterator[str]:
    """A fresh schema in DATABASE_URL's PostgreSQL when set, else a SQLite file in ``tmp_dir``."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_dir}/guardpost-test.db"
        return
    admin = create_engine(normalise_db_url(url))
    schema = f"gp_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        raise RuntimeError(f"DATABASE_URL={url} is set but the database cannot be used: {exc}") from exc
    sep = "&" if "?" in url else "?"
    try:
        yield f"{normalise_db_url(url)}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
