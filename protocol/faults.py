"""Crash points for fault-injection tests, on terminals and server: inert unless GUARDPOST_CRASH_AT names one."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

CRASH_AT_ENV = "GUARDPOST_CRASH_AT"
# The marker makes a crash happen once: the restarted agent finds it and runs on.
CRASH_MARKER_ENV = "GUARDPOST_CRASH_MARKER"
# How many times the point is passed before it fires: lets a process do some work first.
CRASH_SKIP_ENV = "GUARDPOST_CRASH_SKIP"
POINTS = ("before_outbox_write", "after_outbox_write", "after_publish")
SERVER_POINTS = ("ingest_before_commit", "ingest_after_commit")
_passed: dict[str, int] = {}


def crash_point(name: str, prepare: Callable[[], object] | None = None) -> None:
    """Die here, as a power cut would, if the tests armed this point; ``prepare`` runs first (e.g. flush)."""
    if os.environ.get(CRASH_AT_ENV) != name:
        return
    marker = Path(os.environ.get(CRASH_MARKER_ENV, ""))
    if not marker.name or marker.exists():
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] <= int(os.environ.get(CRASH_SKIP_ENV, "0")):
        return
    if prepare is not None:
        prepare()
    marker.write_text(name)
    os.kill(os.getpid(), signal.SIGKILL)
