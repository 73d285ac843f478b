"""The board's micro-cache: one computation per key per interval, even under concurrent misses."""

from __future__ import annotations

import threading
import time

from server.web.shared_cache import MicroCache


def test_a_value_is_reused_within_its_time_and_recomputed_after():
    cache, calls = MicroCache(ttl_s=0.2), []

    def compute() -> bytes:
        calls.append(1)
        return f"v{len(calls)}".encode()

    assert cache.get("admin", compute) == b"v1"
    assert cache.get("admin", compute) == b"v1"
    assert cache.get("supervisor:north", compute) == b"v2"  # scopes never share an answer
    time.sleep(0.25)
    assert cache.get("admin", compute) == b"v3"


def test_concurrent_misses_compute_once():
    cache, calls, start = MicroCache(ttl_s=5), [], threading.Barrier(20)

    def compute() -> bytes:
        calls.append(1)
        time.sleep(0.1)
        return b"board"

    def client() -> None:
        start.wait()
        assert cache.get("admin", compute) == b"board"

    threads = [threading.Thread(target=client) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1


def test_zero_time_to_live_always_computes():
    cache, calls = MicroCache(ttl_s=0), []
    for _ in range(3):
        cache.get("k", lambda: calls.append(1) or b"x")
    assert len(calls) == 3
