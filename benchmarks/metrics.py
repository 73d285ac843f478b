"""Cost of a /metrics scrape on a large events table, and the stored size of one event (bytes per row).

    python -m benchmarks.metrics [--events N] [--terminals T]

Fills a fresh database (DATABASE_URL's PostgreSQL in a new schema, else a SQLite file) with N events
exactly as ingest stores them (signed payload text, same columns, COPY on PostgreSQL), then times a
scrape in a fresh web app (cold: it counts every settled block once) and warm ones, and measures the
events table with its indexes. Ends with ``metrics_cold_ms=... metrics_warm_ms=... bytes_per_event=...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from benchmarks.ingest_load import database
from protocol.events import build_event, encode, format_time
from server.bulk_insert import insert_rows
from server.config import ServerSettings, normalise_db_url
from server.db import make_engine, make_sessionmaker
from server.metrics_access import TOKEN_ENV
from server.metrics_collect import Counters
from server.metrics_counts import BlockCounter
from server.models import Event, Reject
from server.registry import add_device
from server.web import create_app
from server.web.metrics import EXTENSION

CHUNK = 5000
TOKEN = "b" * 32
REJECT_REASONS = ("bad_signature", "unknown_terminal", "invalid_schema", "malformed_json")


def event_row(secret: str, site: str, device: str, seq: int, captured: datetime) -> dict:
    """A row as server/ingest_store.py writes it: the columns it fills and the payload text as received."""
    payload = build_event(
        secret=secret,
        device_id=device,
        site_id=site,
        seq=seq,
        type="check_in" if seq % 2 else "check_out",
        method="face",
        guard_id=f"G-{seq % 997:06d}",
        captured_at=captured,
        clock_synced=True,
        match={"distance": 0.31, "margin": 0.2, "frames": 3, "liveness": "pass"},
        evidence_sha256="ab" * 32,
        monotonic_s=12345.678,
        boot_id="0b6f2c1e-9f57-4a39-9a0c-6f1f0c1e2d3a",
    )
    naive = captured.astimezone(UTC).replace(tzinfo=None)
    return {
        "event_id": payload["event_id"],
        "device_id": device,
        "site_id": site,
        "seq": seq,
        "type": payload["type"],
        "method": "face",
        "guard_id": payload["guard_id"],
        "captured_at": naive,
        "clock_synced": True,
        "received_at": naive,
        "corrected_at": None,
        "clock_status": "synced",
        "boot_id": payload["boot_id"],
        "monotonic_s": payload["monotonic_s"],
        "distance": 0.31,
        "margin": 0.2,
        "liveness": "pass",
        "payload": encode(payload).decode(),
    }


def fill(url: str, events: int, terminals: int) -> None:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    secrets: list[tuple[str, str, str]] = []
    with sessions() as s:
        for t in range(terminals):
            site, device = f"site-{t // 4:05d}", f"gate-{t:05d}"
            terminal, secret = add_device(s, site, device)
            terminal.online = t % 10 != 0
            terminal.heartbeat = {
                "schema": "guardpost.heartbeat.v1",
                "sent_at": format_time(datetime.now(UTC)),
                "outbox_depth": t % 7,
                "clock_synced": t % 13 != 0,
                "version": "0.1.0",
                "alarms": [],
            }
            secrets.append((secret, site, device))
        s.commit()
    start = datetime.now(UTC) - timedelta(days=30)
    done = 0
    while done < events:
        with sessions() as s:
            rows = []
            for i in range(done, min(done + CHUNK, events)):
                secret, site, device = secrets[i % terminals]
                rows.append(event_row(secret, site, device, i // terminals + 1, start + timedelta(seconds=i)))
            insert_rows(s, Event.__table__, rows)
            s.add_all(
                Reject(
                    topic="guardpost/v1/x/y/events",
                    reason=REJECT_REASONS[i % len(REJECT_REASONS)],
                    detail="benchmark",
                    payload_excerpt="{}",
                    payload_size=2,
                )
                for i in range(len(rows) // 100)
            )
            s.commit()
        done += len(rows)
        print(f"\rstored {done:,}/{events:,} events", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE events"))  # what autovacuum does for a table at rest
    engine.dispose()


def bytes_per_event(url: str, events: int) -> tuple[float, str]:
    engine = create_engine(normalise_db_url(url))
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            total = conn.execute(text("SELECT pg_total_relation_size('events')")).scalar()
            how = "pg_total_relation_size('events'): heap, TOAST and all indexes"
        else:
            names = [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE tbl_name = 'events'"))]
            try:  # dbstat: SQLite's per-page accounting, when the library is built with it
                marks = ", ".join(f"'{n}'" for n in names)
                total = conn.execute(text(f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks})")).scalar()
                how = "SQLite dbstat: the events table and its indexes"
            except Exception:
                total = os.path.getsize(normalise_db_url(url).removeprefix("sqlite:///"))
                how = "SQLite file size (all tables; events dominate)"
    engine.dispose()
    return total / events, how


def scrape_ms(client) -> float:
    started = time.perf_counter()
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.get_data(as_text=True)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--terminals", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=5, help="warm scrapes timed after the cold one")
    args = parser.parse_args(argv)
    if args.events < 1 or args.terminals < 1:
        parser.error("--events and --terminals must be at least 1")
    os.environ[TOKEN_ENV] = TOKEN
    with tempfile.TemporaryDirectory() as folder, database(Path(folder)) as (url, what):
        print(f"database: {what}; {args.events:,} events from {args.terminals:,} terminals")
        fill(url, args.events, args.terminals)
        per_event, how = bytes_per_event(url, args.events)
        engine = make_engine(url)
        app = create_app(ServerSettings(db_url=url), engine=engine, cipher=Fernet(Fernet.generate_key()))
        client = app.test_client()
        cold = scrape_ms(client)
        # Steady state, as SETTLE_S after a process's first scrape: every full block is settled and cached.
        settled = {"settle_s": 0.0, "first_margin": 0}
        app.extensions[EXTENSION].counters = Counters(BlockCounter(**settled), BlockCounter(**settled))
        scrape_ms(client)
        warm = statistics.median(scrape_ms(client) for _ in range(args.warm))
        engine.dispose()
    print(f"scrape, cold (first in a process: counts every row):      {cold:8.1f} ms")
    print(f"scrape, warm (blocks settled, median of {args.warm}):           {warm:8.1f} ms")
    print(f"stored size per event: {per_event:,.0f} bytes ({how})")
    print(f"metrics_cold_ms={cold:.1f} metrics_warm_ms={warm:.1f} bytes_per_event={per_event:.0f} events={args.events}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
