"""The export benchmark runs end to end on the test database and ends with its key=value line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_export_benchmark_reports_both_formats():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.export", "--guards", "30", "--sites", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "| xlsx | 30 | 930 |" in done.stdout and "| csv | 30 | 930 |" in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    pattern = r"rows=930 xlsx_s=[\d.]+ csv_s=[\d.]+ xlsx_rows_per_s=\d+ csv_rows_per_s=\d+ "
    pattern += r"xlsx_peak_mib=\d+ csv_peak_mib=\d+"
    assert re.fullmatch(pattern, last), last
