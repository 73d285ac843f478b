"""The ingest benchmark runs end to end on the test broker and database and ends with its key=value line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_ingest_benchmark_reports_both_rates_and_their_ratio():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.ingest", "--events", "300", "--terminals", "3", "--warmup", "1"]
        + ["--repeat", "2"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"ingest_rate=\d+ raw_rate=\d+ ratio=\d+\.\d\d", last), last
    assert "| ingest (1 process) | 300 |" in done.stdout
    assert done.stdout.count("warm-up round:") == 1 and "ratio within a round:" in done.stdout
