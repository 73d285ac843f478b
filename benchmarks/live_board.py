"""Live board benchmark: p50/p95/p99 of the board's data request under N concurrent clients, on a busy registry."""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from benchmarks.ingest_load import cpu_name, database
from guardpost.broker import free_port
from server.crypto import generate_key_file
from server.db import make_engine, make_sessionmaker
from server.models import Assignment, Event, Guard, Site, Terminal, utcnow
from server.users import add_user

BOARD_PATH = "/api/v1/live"


def populate(db_url: str, sites: int, guards: int, days: int) -> dict[str, str]:
    """Sites with a terminal each, guards posted round-robin, ``days`` of two check-ins/outs per guard a day."""
    engine = make_engine(db_url)
    now = utcnow()
    site_ids = [f"site-{n:03d}" for n in range(sites)]
    with make_sessionmaker(engine).begin() as s:
        s.execute(
            insert(Site), [{"site_id": site, "name": f"Site {site}", "timezone": "Asia/Shanghai"} for site in site_ids]
        )
        heartbeat = {"outbox_depth": 0, "clock_synced": True, "alarms": []}
        s.execute(
            insert(Terminal),
            [
                {"device_id": f"gate-{site}", "site_id": site, "secret": "x" * 64, "online": True,
                 "last_seen_at": now, "heartbeat": heartbeat}
                for site in site_ids
            ],
        )  # fmt: skip
        s.execute(insert(Guard), [{"guard_id": f"G-{g:05d}", "name": f"Guard {g}"} for g in range(guards)])
        s.execute(
            insert(Assignment),
            [{"guard_id": f"G-{g:05d}", "site_id": site_ids[g % sites], "start": now - timedelta(days=days + 1)}
             for g in range(guards)],
        )  # fmt: skip
        seq: dict[str, int] = {}
        rows = []
        for day in range(days, -1, -1):
            for g in range(guards):
                site = site_ids[g % sites]
                start = now - timedelta(days=day, hours=(g % 3) * 8 + 1)
                for kind, at in (("check_in", start), ("check_out", start + timedelta(hours=8))):
                    if at > now:
                        continue  # the shift on now: on duty on the board
                    seq[site] = seq.get(site, 0) + 1
                    rows.append(
                        {"event_id": str(uuid.uuid4()), "device_id": f"gate-{site}", "site_id": site,
                         "seq": seq[site], "type": kind, "method": "face", "guard_id": f"G-{g:05d}",
                         "captured_at": at, "clock_synced": True, "received_at": at, "payload": {}}
                    )  # fmt: skip
            if len(rows) > 20_000:
                s.execute(insert(Event), rows)
                rows = []
        if rows:
            s.execute(insert(Event), rows)
        _, admin = add_user(s, "bench-admin", "admin")
        _, supervisor = add_user(s, "bench-supervisor", "supervisor", site_ids=site_ids[:1])
    engine.dispose()
    return {"admin": admin, "supervisor": supervisor}


@contextmanager
def server(db_url: str, folder: Path):
    port = free_port()
    generate_key_file(folder / "server.key")
    env = {**os.environ, "GUARDPOST_DB": db_url, "GUARDPOST_BIND": f"127.0.0.1:{port}"}
    env["GUARDPOST_KEY_FILE"] = str(folder / "server.key")
    log = open(folder / "server.log", "wb")  # noqa: SIM115 -- closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardpost", "server", "--no-ingest", "--no-monitor"], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"the server did not start: {(folder / 'server.log').read_text()[-1000:]}")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def load(port: int, token: str, clients: int, seconds: float) -> tuple[list[float], int]:
    """``clients`` keep-alive connections asking for the board back to back; latencies in ms, and errors."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            try:
                conn.request("GET", BOARD_PATH, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if ok:
                mine.append((time.perf_counter() - began) * 1000)
            else:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live_board", description=__doc__)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--guards", type=int, default=2000)
    parser.add_argument("--days", type=int, default=31, help="days of check-in history in the database")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gp-board-") as tmp, database(Path(tmp)) as (db_url, what):
        started = time.perf_counter()
        tokens = populate(db_url, args.sites, args.guards, args.days)
        print(f"{what}: {args.sites} sites, {args.guards} guards, {args.days} days of events "
              f"(filled in {time.perf_counter() - started:.0f} s); {cpu_name()}, {os.cpu_count()} cores")  # fmt: skip
        with server(db_url, Path(tmp)) as port:
            load(port, tokens["admin"], 2, 2.0)  # warm-up: caches, connections, first queries
            admin_p95 = 0.0
            for who in ("admin", "supervisor"):
                latencies, errors = load(port, tokens[who], args.clients, args.seconds)
                if not latencies:
                    print(f"{who}: every request failed ({errors} errors)")
                    return 1
                p50, p95_who, p99 = (percentile(latencies, p) for p in (50, 95, 99))
                print(
                    f"{who:<10} ({'all sites' if who == 'admin' else 'one site'}): {len(latencies)} answers in "
                    f"{args.seconds:.0f} s = {len(latencies) / args.seconds:.0f}/s, "
                    f"p50 {p50:.0f} ms, p95 {p95_who:.0f} ms, p99 {p99:.0f} ms, errors {errors}"
                )
                if who == "admin":
                    admin_p95 = p95_who
    print(f"live_p95_ms={admin_p95:.1f} clients={args.clients} sites={args.sites} guards={args.guards}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
