"""Export benchmark: a month of duty logs for 2,000 guards as XLSX and CSV; seconds, rows/s and peak memory."""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks.ingest_load import cpu_name, database
from server.db import make_engine

FORMATS = ("xlsx", "csv")


def _status_kib(key: str) -> int:
    """VmRSS or VmHWM of this process in KiB (Linux); the lifetime peak where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from the current RSS
    except OSError:
        pass


def child(db_url: str, month: str, fmt: str, out: Path, profile: bool) -> dict:
    """One export in a fresh process, so its peak memory is its own: time, rows and memory as JSON."""
    from server.db import make_sessionmaker
    from server.exports.generate import write_export
    from server.exports.request import ExportRequest
    from server.scope import Scope

    engine = make_engine(db_url)
    request = ExportRequest(month=month, format=fmt, locale="zh")
    _reset_peak()  # imports and the migration check peak higher than some exports: count only the export
    before = _status_kib("VmRSS")
    profiler = cProfile.Profile() if profile else None
    with make_sessionmaker(engine)() as session:
        started, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        result = write_export(session, Scope(role="admin"), request, out)
        if profiler is not None:
            profiler.disable()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = _status_kib("VmHWM")
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(15)
    engine.dispose()
    size = sum(path.stat().st_size for path in result.files)
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rows": result.rows,
        "guards": result.guards,
        "peak_kib": peak,
        "base_kib": before,
        "bytes": size,
    }


def run_child(db_url: str, month: str, fmt: str, folder: Path, profile: bool) -> dict:
    out = folder / f"bench.{fmt}"
    command = [sys.executable, "-m", "benchmarks.export", "--child", fmt, "--db", db_url, "--month", month]
    command += ["--out", str(out)] + (["--profile", fmt] if profile else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"error: the {fmt} export failed:\n{done.stderr[-3000:]}")
    if profile:
        print(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export", description=__doc__)
    parser.add_argument("--guards", type=int, default=2000, help="guards (default 2000)")
    parser.add_argument("--sites", type=int, default=40, help="sites they are spread over (default 40)")
    parser.add_argument("--month", default="2026-01", help="a month of 31 days by default")
    parser.add_argument("--repeat", type=int, default=1, help="exports per format; the fastest counts")
    parser.add_argument("--profile", choices=FORMATS, help="print this format's cProfile (top 15 by own time)")
    parser.add_argument("--child", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.guards < 1 or args.sites < 1 or args.repeat < 1:
        parser.error("--guards, --sites and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.db, args.month, args.child, Path(args.out), args.profile is not None)))
        return 0
    from benchmarks.export_data import populate

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gp-bench-export-")))
        db_url, db_what = stack.enter_context(database(folder))
        engine = make_engine(db_url)
        started = time.perf_counter()
        records = populate(engine, args.guards, args.sites, args.month)
        engine.dispose()
        print(f"GuardPost export benchmark: {args.guards} guards at {args.sites} sites, {args.month}")
        print(f"  {records} duty records generated in {time.perf_counter() - started:.1f} s; database: {db_what}")
        print(f"  machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        results = {}
        for fmt in FORMATS:
            runs = [run_child(db_url, args.month, fmt, folder, args.profile == fmt) for _ in range(args.repeat)]
            results[fmt] = min(runs, key=lambda r: r["seconds"])
        print()
        print("| format | guards | rows | seconds | CPU s | rows/s | peak RSS MiB | growth MiB | file MiB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for fmt, r in results.items():
            print(
                f"| {fmt} | {r['guards']} | {r['rows']} | {r['seconds']:.2f} | {r['cpu']:.2f} "
                f"| {r['rows'] / r['seconds']:,.0f} "
                f"| {r['peak_kib'] / 1024:.0f} | {(r['peak_kib'] - r['base_kib']) / 1024:.0f} "
                f"| {r['bytes'] / 2**20:.1f} |"
            )
        xlsx, csv = results["xlsx"], results["csv"]
        print(
            f"rows={xlsx['rows']} xlsx_s={xlsx['seconds']:.2f} csv_s={csv['seconds']:.2f} "
            f"xlsx_rows_per_s={xlsx['rows'] / xlsx['seconds']:.0f} csv_rows_per_s={csv['rows'] / csv['seconds']:.0f} "
            f"xlsx_peak_mib={xlsx['peak_kib'] / 1024:.0f} csv_peak_mib={csv['peak_kib'] / 1024:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
