"""`guardpost ingest` as a child process of a benchmark: started, waited for, stopped, its stats printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.ingest_load import wait


class IngestProcess:
    """One ``guardpost ingest --share-group`` process writing its log to ``log``."""

    def __init__(self, db_url: str, mqtt_url: str, log: Path, client_id: str, group: str):
        env = {**os.environ, "GUARDPOST_DB": db_url, "GUARDPOST_MQTT": mqtt_url}
        env["GUARDPOST_INGEST_CLIENT_ID"] = client_id
        self.client_id, self.log = client_id, log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "guardpost", "ingest", "--share-group", group],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started = time.monotonic()
        self.subscribed_at: float | None = None

    def subscribed(self) -> bool:
        """True once it logged its subscription (noting when it was first seen); exits if the process died."""
        if self.subscribed_at is None and b"ingest subscribed" in self.log.read_bytes():
            self.subscribed_at = time.monotonic()
        if self.subscribed_at is None and self.proc.poll() is not None:
            raise SystemExit(f"error: ingest process exited: {self.log.read_text()[-2000:]}")
        return self.subscribed_at is not None

    def stop(self, *, report: bool = True) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        stats = [line for line in self.log.read_text().splitlines() if "ingest stats:" in line]
        if report and stats:
            print(f"  {self.client_id}: {stats[-1].split('ingest stats: ')[1]}")


@contextmanager
def ingest_process(
    db_url: str, mqtt_url: str, log: Path, client_id: str, group: str, *, report: bool = True
) -> Iterator[IngestProcess]:
    """A running, subscribed ingest process; SIGTERM on exit (it finishes and acks its batch first)."""
    process = IngestProcess(db_url, mqtt_url, log, client_id, group)
    try:
        wait(process.subscribed, 30, f"ingest {client_id}")
        yield process
    finally:
        process.stop(report=report)
