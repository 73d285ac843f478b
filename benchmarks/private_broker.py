"""A Mosquitto of the benchmark's own, on a free port, that queues without limit for offline sessions."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.ingest_load import port_open, wait
from guardpost.broker import free_port


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin")


@contextmanager
def private_mosquitto(folder: Path) -> Iterator[str]:
    """Yields its URL. A stock Mosquitto drops QoS 1 messages past 1000 queued for one client (a backlog)."""
    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit(
            "error: this benchmark needs Mosquitto (apt-get install mosquitto), or --mqtt-url of a broker "
            "that queues a backlog without limit for offline sessions"
        )
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\n"
        "persistence false\nlog_dest none\n"
    )
    proc = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: port_open(port) or proc.poll() is not None, 20, "the private Mosquitto")
        if proc.poll() is not None:
            raise SystemExit(f"error: Mosquitto exited at start ({binary} -c {config})")
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
