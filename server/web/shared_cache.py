"""A per-process micro-cache: one computation per key per second, however many clients ask at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

MAX_KEYS = 1024


class MicroCache:
    """Values live ``ttl_s`` seconds; concurrent misses on one key wait for a single computation."""

    def __init__(self, ttl_s: float):
        self._ttl = ttl_s
        self._values: dict[Hashable, tuple[float, bytes]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        hit = self._values.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._values.get(key)  # computed by the thread we waited for
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
            value = compute()
            if len(self._values) >= MAX_KEYS:  # many distinct scopes: start over rather than grow
                self._values.clear()
            self._values[key] = (time.monotonic() + self._ttl, value)
            return value


def app_cache(name: str, default_ttl_s: float = 1.0) -> MicroCache:
    """The app's cache called ``name``; ``GUARDPOST_BOARD_CACHE_S`` sets its lifetime (0 turns it off)."""
    from flask import current_app

    extensions = current_app.extensions
    key = f"guardpost.cache.{name}"
    if key not in extensions:
        extensions[key] = MicroCache(ttl_s=current_app.config.get("GUARDPOST_BOARD_CACHE_S", default_ttl_s))
    return extensions[key]
