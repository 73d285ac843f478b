"""Crash points for fault-injection tests: inert unless GUARDPOST_CRASH_AT names one; then SIGKILL, once."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

CRASH_AT_ENV = "GUARDPOST_CRASH_AT"
# The marker makes a crash happen once: the restarted agent finds it and runs on.
CRASH_MARKER_ENV = "GUARDPOST_CRASH_MARKER"
POINTS = ("before_outbox_write", "after_outbox_write", "after_publish")


def crash_point(name: str, prepare: Callable[[], object] | None = None) -> None:
    """Die here, as a power cut would, if the tests armed this point; ``prepare`` runs first (e.g. flush)."""
    if os.environ.get(CRASH_AT_ENV) != name:
        return
    marker = Path(os.environ.get(CRASH_MARKER_ENV, ""))
    if not marker.name or marker.exists():
        return
    if prepare is not None:
        prepare()
    marker.write_text(name)
    os.kill(os.getpid(), signal.SIGKILL)
