"""systemd readiness and watchdog notifications (sd_notify protocol), without any dependency."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("guardpost.agent.watchdog")


def notify(message: str) -> bool:
    """Send ``message`` (e.g. "READY=1") to $NOTIFY_SOCKET; False when not under systemd or on failure."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # Linux abstract namespace
    elif not address.startswith("/"):
        log.warning("ignoring NOTIFY_SOCKET %r: neither a path nor an abstract socket", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError as exc:
        # Never fatal: a missed ping at worst gets the agent restarted, which is what the watchdog is for.
        log.warning("systemd notification %r failed: %s", message.split("=", 1)[0], exc)
        return False
    return True


def ready() -> bool:
    """Tell systemd that start-up is complete (Type=notify units stay "activating" until this)."""
    return notify("READY=1")


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_ping() -> bool:
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """One line for `systemctl status`; newlines would start new assignments, so they become spaces."""
    return notify("STATUS=" + " ".join(text.splitlines()))


def watchdog_interval_s() -> float | None:
    """How often to ping: half of $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises; None when not watched."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None  # the variables were meant for another process (e.g. our parent)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 / 2 if value > 0 else None
