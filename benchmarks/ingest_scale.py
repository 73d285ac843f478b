"""Ingest scale-out: ingest rates through 1 and through N shared-subscription processes, and their ratio.

Drain mode (the default) queues a backlog at the broker while ingest is down, then times P `guardpost
ingest` processes of one share group draining it: nothing but ingest, the broker and the database runs,
so the rate is the consumers' own. Live mode runs `benchmarks.ingest` (publishers publishing while ingest
stores) with 1 and N processes: on a machine whose cores the publishers also need, it shows the
publishers' limit as much as ingest's.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from benchmarks.ingest_drain import Drain, drain
from benchmarks.ingest_load import cpu_name, database
from benchmarks.private_broker import private_mosquitto
from server.db import make_engine

LAST_LINE = re.compile(r"ingest_rate=(\d+) raw_rate=(\d+) ratio=([\d.]+)")


def live(processes: int, events: int, terminals: int, repeat: int) -> int:
    """Ingest events/s from one run of benchmarks.ingest with ``processes`` ingest processes."""
    command = [sys.executable, "-m", "benchmarks.ingest", "--events", str(events), "--terminals", str(terminals)]
    command += ["--processes", str(processes), "--repeat", str(repeat)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    sys.stdout.write(done.stdout)
    found = LAST_LINE.search(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    if done.returncode != 0 or found is None:
        raise SystemExit(f"benchmarks.ingest --processes {processes} failed: {done.stderr.strip()[-500:]}")
    return int(found.group(1))


def drained(args: argparse.Namespace) -> tuple[int, int]:
    """(1-process, N-process) drain rates, the best of ``--repeat`` rounds each, every round checked."""
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gp-drain-")))
        mqtt_url = args.mqtt_url or stack.enter_context(private_mosquitto(folder))
        db_url, db_what = stack.enter_context(database(folder))
        engine = make_engine(db_url)
        stack.callback(engine.dispose)
        print(f"Ingest drain: {args.events} queued events from {args.terminals} terminals, QoS 1")
        print(f"  broker: {args.mqtt_url or 'a private Mosquitto (max_queued_messages 0)'}; database: {db_what}")
        print(f"  machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        if not db_url.startswith("postgresql"):
            print("  note: several writers on one SQLite file take turns; a city or province runs PostgreSQL")
        best: dict[int, Drain] = {}
        for _round in range(args.repeat):
            for processes in (1, args.processes):
                result = drain(engine, db_url, mqtt_url, folder, processes, args.events, args.terminals)
                print(
                    f"  {processes} process(es): {result.rate:.0f} events/s ({result.events} in {result.seconds:.2f} s "
                    f"from the first stored row; start skew {result.skew_s:.2f} s); stored {result.stored}, "
                    f"distinct {result.distinct}"
                )
                if result.stored != args.events or result.distinct != args.events:
                    raise SystemExit(
                        f"error: {args.events} published, {result.stored} stored, {result.distinct} distinct"
                    )
                if processes not in best or result.rate > best[processes].rate:
                    best[processes] = result
        print("  no event lost, none stored twice")
    return round(best[1].rate), round(best[args.processes].rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_scale", description=__doc__)
    parser.add_argument("--mode", choices=("drain", "live"), default="drain")
    parser.add_argument("--processes", type=int, default=max(2, os.cpu_count() or 2), help="N (default: cores)")
    parser.add_argument("--events", type=int, default=None, help="default 20000 (drain), 10000 (live)")
    parser.add_argument("--terminals", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--mqtt-url", default=None, help="drain: a broker of yours instead of a private Mosquitto")
    args = parser.parse_args(argv)
    if args.processes < 2:
        parser.error("--processes must be at least 2 to compare with one")
    if args.mode == "live":
        if not os.environ.get("MQTT_URL"):
            parser.error(
                "live mode needs MQTT_URL (Mosquitto or EMQX): the embedded broker has no shared subscriptions"
            )
        events = args.events or 10_000
        single = live(1, events, args.terminals, args.repeat)
        multi = live(args.processes, events, args.terminals, args.repeat)
    else:
        args.events = args.events or 20_000
        single, multi = drained(args)
    print()
    print(f"1 ingest process: {single} events/s; {args.processes} on one shared subscription: {multi} events/s")
    print(f"single_rate={single} multi_rate={multi} processes={args.processes} scale={multi / max(single, 1):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
