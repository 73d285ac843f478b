"""Cost of provincial reporting: building batches (first run, a quiet round, a round after corrections) and sending."""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select, update
from werkzeug.serving import make_server

from protocol.cards import mask_card_number, resident_id_check_character
from server.db import make_engine, make_sessionmaker
from server.duty.tables import DutyRecordRow
from server.models import Assignment, Company, Guard, Site, utcnow
from server.reporting.config import Secret, load_config
from server.reporting.receiver import Store, create_receiver, load_items
from server.reporting.runner import Reporter

EXAMPLE = Path(__file__).parents[1] / "docs" / "reporting.example.toml"
SECRET = "benchmark-reporting-secret-0123456789"
STATUSES = ("present", "present", "present", "late", "absent", "early_leave")


def seed(sessions, cipher: Fernet, guards: int, days: int, sites: int) -> None:
    today = utcnow().date()
    with sessions.begin() as s:
        s.add_all(Company(company_id=f"C-{c}", name=f"Company {c}", home_province="440000") for c in range(10))
        s.add_all(
            Site(
                site_id=f"S-{n}",
                name=f"Site {n}",
                company_id=f"C-{n % 10}",
                province="440000",
                timezone="Asia/Shanghai",
            )
            for n in range(sites)
        )
    rows, postings, duty = [], [], []
    for g in range(guards):
        first17 = f"440106199{g % 10}0101{g % 1000:03d}"
        number = first17 + resident_id_check_character(first17)
        rows.append(
            Guard(
                guard_id=f"G-{g:05d}",
                name=f"Guard {g}",
                company_id=f"C-{g % 10}",
                id_number_encrypted=cipher.encrypt(number.encode()),
                id_number_masked=mask_card_number(number),
                sex="male" if g % 2 else "female",
                birth_date=date(1990 + g % 10, 1, 1),
            )
        )
        site = f"S-{g % sites}"
        postings.append(Assignment(guard_id=f"G-{g:05d}", site_id=site, company_id=f"C-{g % 10}"))
        for d in range(1, days + 1):
            duty.append(
                {
                    "guard_id": f"G-{g:05d}",
                    "site_id": site,
                    "shift_id": f"{site}-day",
                    "date": today - timedelta(days=d),
                    "status": STATUSES[(g + d) % len(STATUSES)],
                    "minutes_worked": 480,
                    "overtime_minutes": 0,
                    "late_minutes": 0,
                    "early_leave_minutes": 0,
                    "punch_ids": [],
                }
            )
    with sessions.begin() as s:
        s.add_all(rows)
    with sessions.begin() as s:
        s.add_all(postings)
    with sessions.begin() as s:
        s.execute(DutyRecordRow.__table__.insert(), duty)


@contextmanager
def receiver_url():
    app = create_receiver(SECRET, load_items(None), Store(None))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/upload"
    finally:
        server.shutdown()


def timed(label: str, action, results: dict):
    start = time.perf_counter()
    value = action()
    results[label] = time.perf_counter() - start
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reporting", description=__doc__)
    parser.add_argument("--guards", type=int, default=2000)
    parser.add_argument("--days", type=int, default=31, help="duty days per guard, all inside the lookback")
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--changed", type=float, default=0.01, help="share of duty records corrected")
    parser.add_argument("--db", help="SQLAlchemy URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per batch is noise here
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(args.db or f"sqlite:///{folder}/bench.db")
        sessions = make_sessionmaker(engine)
        cipher = Fernet(Fernet.generate_key())
        print(
            f"seeding {args.guards} guards x {args.days} days ({args.guards * args.days} duty records)...", flush=True
        )
        seed(sessions, cipher, args.guards, args.days, args.sites)
        with receiver_url() as url:
            text = EXAMPLE.read_text("utf-8").replace("https://bagl.example.invalid/api/v1/upload", url)
            (Path(folder) / "reporting.toml").write_text(text, "utf-8")
            config = load_config(Path(folder) / "reporting.toml")
            reporter = Reporter(sessions, config, Secret(SECRET), cipher, echo=lambda _line: None)
            results: dict[str, float] = {}
            built = timed("first_build_s", reporter.build_all, results)
            batches = sum(len(b.batch_ids) for b in built)
            records = sum(b.new for b in built)
            sent = timed("first_send_s", reporter.send_due, results)
            refused = [s.line() for s in sent if s.status != "accepted"]
            assert not refused, refused[:3]
            timed("quiet_build_s", reporter.build_all, results)
            with sessions.begin() as s:
                ids = list(s.scalars(select(DutyRecordRow.id)))
                chosen = random.Random(7).sample(ids, max(1, int(len(ids) * args.changed)))
                s.execute(
                    update(DutyRecordRow).where(DutyRecordRow.id.in_(chosen)).values(status="present", corrected=True)
                )
            again = timed("changed_build_s", reporter.build_all, results)
            timed("changed_send_s", reporter.send_due, results)
        engine.dispose()
    changed = sum(b.changed for b in again)
    print(f"first round: {records} records in {batches} batches")
    print(
        f"  build {results['first_build_s']:.2f} s, send {results['first_send_s']:.2f} s "
        f"({records / results['first_send_s']:.0f} records/s to a local receiver)"
    )
    print(f"quiet round (nothing changed, the cost paid every interval): build {results['quiet_build_s']:.2f} s")
    print(
        f"after correcting {changed} duty records: build {results['changed_build_s']:.2f} s, "
        f"send {results['changed_send_s']:.2f} s"
    )
    print(f"quiet_vs_first={results['quiet_build_s'] / results['first_build_s']:.2f}")
    print(" ".join(f"{k}={v:.3f}" for k, v in results.items()) + f" records={records} changed={changed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
