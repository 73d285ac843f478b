"""Ingest scale-out: the same load through 1 and through N shared-subscription ingest processes, and the ratio."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

LAST_LINE = re.compile(r"ingest_rate=(\d+) raw_rate=(\d+) ratio=([\d.]+)")


def measure(processes: int, events: int, terminals: int, repeat: int) -> tuple[int, int]:
    """(ingest events/s, raw events/s) from one run of benchmarks.ingest with ``processes`` ingest processes."""
    command = [sys.executable, "-m", "benchmarks.ingest", "--events", str(events), "--terminals", str(terminals)]
    command += ["--processes", str(processes), "--repeat", str(repeat)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    sys.stdout.write(done.stdout)
    found = LAST_LINE.search(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    if done.returncode != 0 or found is None:
        raise SystemExit(f"benchmarks.ingest --processes {processes} failed: {done.stderr.strip()[-500:]}")
    return int(found.group(1)), int(found.group(2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_scale", description=__doc__)
    parser.add_argument("--processes", type=int, default=max(2, os.cpu_count() or 2), help="N (default: cores)")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--terminals", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    if args.processes < 2:
        parser.error("--processes must be at least 2 to compare with one")
    if not os.environ.get("MQTT_URL"):
        parser.error("set MQTT_URL to a Mosquitto or EMQX broker: the embedded broker has no shared subscriptions")
    single, raw_single = measure(1, args.events, args.terminals, args.repeat)
    multi, raw_multi = measure(args.processes, args.events, args.terminals, args.repeat)
    print()
    print(f"1 ingest process: {single} events/s (bare subscriber {raw_single}/s in the same run)")
    print(f"{args.processes} ingest processes on one shared subscription: {multi} events/s (bare {raw_multi}/s)")
    print(f"single_rate={single} multi_rate={multi} processes={args.processes} scale={multi / single:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
