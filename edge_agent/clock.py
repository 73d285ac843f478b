"""Is the terminal's clock synchronised? A Pi has no battery clock, so it may boot with a wrong time."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

TIME_ERROR = 5  # adjtimex(2): clock not synchronised


def kernel_clock_synced() -> bool:
    """Ask the kernel (NTP daemons such as chrony or timesyncd clear its unsync flag once locked)."""
    if not sys.platform.startswith("linux"):
        return False
    buf = ctypes.create_string_buffer(512)  # struct timex with modes=0: a read-only query
    state = ctypes.CDLL(None, use_errno=True).adjtimex(buf)
    return state not in (-1, TIME_ERROR)


def boot_id() -> str | None:
    """Changes at every boot; with monotonic time it tells the server which events share a clock."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def clock_synced(mode: str) -> bool:
    if mode == "assume_synced":
        return True
    if mode == "assume_unsynced":
        return False
    return kernel_clock_synced()
