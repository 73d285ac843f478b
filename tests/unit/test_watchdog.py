"""systemd notifications over a real AF_UNIX datagram socket, and the watchdog interval."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from edge_agent import watchdog


@pytest.fixture
def systemd(tmp_path, monkeypatch):
    """A datagram socket standing in for systemd's notify socket."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_ping_status_and_stopping_reach_systemd(systemd):
    assert watchdog.ready()
    assert received(systemd) == "READY=1"
    assert watchdog.watchdog_ping()
    assert received(systemd) == "WATCHDOG=1"
    assert watchdog.status("outbox 3 events\nclock synced")
    assert received(systemd) == "STATUS=outbox 3 events clock synced"
    assert watchdog.stopping()
    assert received(systemd) == "STOPPING=1"


def test_abstract_socket(monkeypatch):
    name = f"guardpost-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert watchdog.notify("READY=1")
        assert received(sock) == "READY=1"


def test_not_under_systemd_or_socket_gone(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert watchdog.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "missing.sock"))
    assert watchdog.watchdog_ping() is False
    assert "WATCHDOG" in caplog.text
    monkeypatch.setenv("NOTIFY_SOCKET", "relative.sock")
    assert watchdog.ready() is False


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog.watchdog_interval_s() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog.watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog.watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog.watchdog_interval_s() is None
    monkeypatch.delenv("WATCHDOG_PID")
    for bad in ("0", "-5", "soon", ""):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert watchdog.watchdog_interval_s() is None
