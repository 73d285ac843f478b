"""The scale-out benchmark drains a backlog through 1 and 2 ingest processes and checks every event is stored once."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from benchmarks.private_broker import mosquitto_binary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(mosquitto_binary() is None, reason="drain mode runs a private Mosquitto (not installed)"),
]


def test_drain_mode_reports_both_rates_and_stores_every_event_once():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.ingest_scale", "--events", "600", "--processes", "2", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "no event lost, none stored twice" in done.stdout
    assert re.search(r"2 process\(es\): \d+ events/s .* stored 600, distinct 600", done.stdout), done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"single_rate=\d+ multi_rate=\d+ processes=2 scale=\d+\.\d\d", last), last
