"""The audit chain on the real database: seal what ingest stored, verify a month, catch tampering done in SQL."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, insert, select, text

from protocol.events import encode
from protocol.topics import events_topic
from server.audit.chain import Sealable, link, record_hash
from server.audit.kinds import KINDS
from server.audit.sealer import seal_pending
from server.audit.store import as_entry, entry_values, lock_chain
from server.audit.tables import AuditEntry
from server.audit.verify import AnchorMismatch, verify_month
from server.db import make_engine, make_sessionmaker
from server.duty.service import correct
from server.duty.tables import DutyRecordRow
from server.ingest import Ingestor
from server.models import Event, Finding, ReviewDecision
from server.monitor import Monitor
from server.registry import add_device, ensure_site
from tests.support.events import signed_event
from tests.support.services import wait_for

SITE, DEVICE, MONTH = "site-a", "gate-1", "2026-04"


def ingest(world, seqs, *, day: int = 10, site: str = SITE, device: str = DEVICE, secret: str | None = None) -> None:
    messages = [
        (
            events_topic(site, device),
            encode(
                signed_event(
                    secret or world.secret,
                    site,
                    device,
                    seq=seq,
                    captured_at=datetime(2026, 4, day, 8, seq % 60, tzinfo=UTC),
                    guard_id=f"G-{seq % 3}",
                )
            ),
        )
        for seq in seqs
    ]
    assert all(o.stored for o in Ingestor(world.sessions).handle_batch(messages))


def add_correction(world, day: date = date(2026, 4, 10)) -> None:
    with world.sessions() as session:
        session.add(
            DutyRecordRow(
                guard_id="G-1",
                site_id=SITE,
                shift_id="day",
                date=day,
                status="absent",
                minutes_worked=0,
                overtime_minutes=0,
                late_minutes=0,
                early_leave_minutes=0,
                punch_ids=[],
            )
        )
        session.flush()
        correct(
            session,
            guard_id="G-1",
            shift_id="day",
            day=day,
            field="status",
            value="present",
            reason="reader fault; confirmed by CCTV",
            by="supervisor-li",
        )
        session.commit()


def seal(world, **kwargs):
    with world.sessions() as session:
        return seal_pending(session, **kwargs)


def verify(world, month: str = MONTH, **kwargs):
    with world.sessions() as session:
        return verify_month(session, month, **kwargs)


def sql(world, statement: str) -> None:
    with world.engine.begin() as connection:
        connection.execute(text(statement))


def event_id(world, row_id: int) -> str:
    with world.sessions() as session:
        return session.scalar(select(Event.event_id).where(Event.id == row_id))


@pytest.fixture
def world(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        _t, secret = add_device(session, SITE, DEVICE)
        session.commit()
    yield SimpleNamespace(engine=engine, sessions=sessions, secret=secret)
    engine.dispose()


@pytest.fixture
def sealed(world):
    ingest(world, range(1, 7))
    add_correction(world)
    result = seal(world)
    assert result.sealed == {"event": 6, "correction": 1, "review": 0}
    return world


def test_a_sealed_month_verifies_and_gives_its_anchor(sealed):
    progress: list[tuple[int, int]] = []
    report = verify(sealed, progress=lambda done, total: progress.append((done, total)))
    assert report.intact, report.problems
    assert progress and progress[-1][0] == progress[-1][1] == report.links
    assert dict(report.checked) == {"event": 6, "correction": 1}
    assert report.anchor.counts == {"event": 6, "correction": 1} and len(report.anchor.entry_hash) == 64
    assert verify(sealed, "2026-03").anchor is None  # nothing of another month
    assert seal(sealed).total == 0  # sealing again appends nothing


def test_clock_correction_of_a_sealed_event_is_legitimate(sealed):
    sql(sealed, "UPDATE events SET clock_status = 'corrected', corrected_at = '2026-04-10 07:59:00' WHERE id = 2")
    assert verify(sealed).intact


def _backdated_insert(world) -> str:
    new_id = str(uuid.uuid4())
    sql(
        world,
        "INSERT INTO events (event_id, device_id, site_id, seq, type, method, guard_id, captured_at, clock_synced,"
        " corrected_at, clock_status, received_at, payload) VALUES"
        f" ('{new_id}', '{DEVICE}', '{SITE}', 99, 'check_in', 'card', 'G-7', '2026-04-12 08:00:00', true,"
        " '2026-04-12 08:00:00', 'synced', '2026-04-12 08:00:03', '{}')",
    )
    return new_id


@pytest.mark.parametrize(
    "tamper, category, says",
    [
        ("UPDATE events SET guard_id = 'G-999' WHERE id = 2", "modified", "modified: event {event2} (id 2)"),
        ("DELETE FROM events WHERE id = 3", "deleted", "deleted: event {event3} (id 3) was sealed"),
        (
            "UPDATE duty_corrections SET reason = 'no reason at all'",
            "modified",
            "modified: duty correction 1 (G-1, day, 2026-04-10, status) was changed after it was sealed",
        ),
        ("backdated insert", "unsealed", "not sealed: event {inserted} (id 7) arrived 2026-04-12 08:00:03 UTC"),
    ],
)
def test_tampering_in_sql_is_reported_in_one_line(sealed, tamper, category, says):
    names = {"event2": event_id(sealed, 2), "event3": event_id(sealed, 3), "inserted": None}
    if tamper == "backdated insert":
        names["inserted"] = _backdated_insert(sealed)
    else:
        sql(sealed, tamper)
    report = verify(sealed)
    assert [p.category for p in report.problems] == [category]
    assert report.problems[0].message.startswith(says.format(**names)), report.problems[0].message
    assert report.anchor is not None  # still computed, the CLI withholds it


def test_a_backdated_insert_that_got_sealed_is_reported_as_sealed_late(sealed):
    inserted = _backdated_insert(sealed)
    assert seal(sealed).sealed["event"] == 1
    [problem] = verify(sealed).problems
    assert problem.category == "sealed_late" and problem.message.startswith(f"sealed late: event {inserted} (id 7)")
    assert verify(sealed, max_delay=timedelta(days=10_000)).intact  # an operator may accept a known outage


def test_records_that_predate_the_chain_are_not_reported_late(world):
    ingest(world, range(1, 4))
    sql(world, "UPDATE events SET received_at = '2026-04-10 09:00:00'")  # long before sealing began
    seal(world)
    report = verify(world)
    assert report.intact and report.backfilled == 3


def test_a_chain_rewritten_from_start_to_end_is_caught_by_the_published_anchor(sealed):
    published = verify(sealed).anchor.entry_hash
    sql(sealed, "UPDATE events SET guard_id = 'G-999' WHERE id = 4")
    with sealed.sessions() as session:  # what an attacker with the database and this code could do
        old = [as_entry(row) for row in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]

        kind = KINDS["event"]
        row = session.execute(kind.select().where(kind.table.c.id == 4)).one()._mapping
        new, last = [], None
        for e in old:
            rh = record_hash("event", kind.facts(row)) if (e.kind, e.ref_id) == ("event", 4) else e.record_hash
            [last] = link(last, [Sealable(e.kind, e.ref_id, e.ref_key, e.month, e.site_id, rh)], e.sealed_at)
            new.append(last)
        session.execute(AuditEntry.__table__.delete())
        session.execute(insert(AuditEntry), [entry_values(e) for e in new])
        session.commit()
    assert verify(sealed).intact  # consistent in itself: only an anchor published before can tell
    report = verify(sealed, anchor=published)
    assert [p.category for p in report.problems] == ["anchor"]
    assert "is not in the chain: entries up to it were rewritten" in report.problems[0].message


def test_an_anchor_still_verifies_after_later_entries_and_names_its_month(sealed):
    published = verify(sealed).anchor.entry_hash
    ingest(sealed, range(7, 9), day=11)
    seal(sealed)
    assert verify(sealed, anchor=published).intact
    ingest(sealed, [9], day=30)
    sql(sealed, "UPDATE events SET captured_at = '2026-05-03 08:00:00' WHERE seq = 9")  # before sealing
    seal(sealed)
    may = verify(sealed, "2026-05").anchor.entry_hash
    with pytest.raises(AnchorMismatch, match="is the anchor of 2026-05, not 2026-04"):
        verify(sealed, anchor=may)


def test_an_event_belongs_to_the_month_of_its_local_date_at_the_site(world):
    with world.sessions() as session:
        ensure_site(session, "site-sh", tz="Asia/Shanghai")
        _t, secret = add_device(session, "site-sh", "gate-sh")
        session.commit()
    ingest(world, [1], site="site-sh", device="gate-sh", secret=secret, day=30)  # 08:01 UTC, 16:01 local
    sql(world, "UPDATE events SET captured_at = '2026-04-30 17:00:00'")  # 01:00 on 1 May in Shanghai
    seal(world)
    assert dict(verify(world, "2026-05").checked) == {"event": 1} and not verify(world, "2026-04").checked


def test_site_filter_checks_that_sites_records_only(world):
    with world.sessions() as session:
        _t, secret_b = add_device(session, "site-b", "gate-b")
        session.commit()
    ingest(world, range(1, 4))
    ingest(world, range(1, 4), site="site-b", device="gate-b", secret=secret_b)
    seal(world)
    sql(world, "UPDATE events SET guard_id = 'G-999' WHERE site_id = 'site-b' AND seq = 2")
    assert verify(world, site=SITE).intact and dict(verify(world, site=SITE).checked) == {"event": 3}
    assert [p.category for p in verify(world, site="site-b").problems] == ["modified"]


def test_a_second_sealer_waits_for_the_first(world):
    ingest(world, range(1, 11))
    other = make_engine(str(world.engine.url.render_as_string(hide_password=False)))
    holder = make_sessionmaker(world.engine)()
    lock_chain(holder)  # a sealer in another process, mid-transaction
    done: list = []
    waiter = threading.Thread(target=lambda: done.append(seal_pending(make_sessionmaker(other)())))
    waiter.start()
    time.sleep(1.0)
    assert not done, "the second sealer did not wait for the chain lock"
    holder.commit()
    waiter.join(30)
    other.dispose()
    assert done and done[0].sealed["event"] == 10


def _insert_events(world, first_seq: int, n: int) -> None:
    with world.sessions() as session:
        session.add_all(
            Event(
                event_id=str(uuid.uuid4()),
                device_id=DEVICE,
                site_id=SITE,
                seq=seq,
                type="check_in",
                method="card",
                guard_id="G-1",
                captured_at=datetime(2026, 4, 20, 8, 0) + timedelta(seconds=seq),
                clock_synced=True,
                payload={"seq": seq},
            )
            for seq in range(first_seq, first_seq + n)
        )
        session.commit()


def test_concurrent_sealers_never_fork_the_chain(world):
    """Two sealers (as two server processes would run) race while events keep arriving."""
    _insert_events(world, 1, 300)
    url = world.engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(2)]  # each its own connections, as two processes would have
    stop, errors = threading.Event(), []

    def sealer(engine) -> None:
        try:
            while not stop.is_set():
                with make_sessionmaker(engine)() as session:
                    seal_pending(session, batch=25)
        except Exception as exc:  # reported below: a fork attempt would end here
            errors.append(exc)

    threads = [threading.Thread(target=sealer, args=(engine,)) for engine in engines]
    for t in threads:
        t.start()
    for i in range(10):
        _insert_events(world, 301 + 50 * i, 50)
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(60)
    for engine in engines:
        engine.dispose()
    assert not errors, errors
    seal(world)
    with world.sessions() as session:
        seqs = list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        refs = session.scalar(select(func.count(func.distinct(AuditEntry.ref_id))).where(AuditEntry.kind == "event"))
    assert seqs == list(range(1, len(seqs) + 1)) and refs == 800 and len(seqs) == 800 + len(KINDS)  # start markers
    report = verify(world)
    assert report.intact and report.checked["event"] == 800


def test_the_monitor_seals_new_records(world):
    monitor = Monitor(world.sessions, every_s=0.2)
    monitor.start()
    try:
        ingest(world, range(1, 4))
        wait_for(lambda: verify(world).checked["event"] == 3, 20, "the monitor to seal three events")
    finally:
        monitor.stop()
    assert verify(world).intact


@pytest.mark.parametrize(
    "tamper, problems",
    [
        ("DELETE FROM audit_chain WHERE seq = 5", ["missing"]),
        ("UPDATE audit_chain SET record_hash = entry_hash WHERE seq = 6", ["altered"]),
        ("UPDATE audit_chain SET month = '2026-03' WHERE seq = 6", ["altered"]),
        # widening the start markers would excuse records sealed late: every marker is checked wherever it is
        ("UPDATE audit_chain SET ref_id = ref_id + 1000 WHERE kind LIKE 'start:%'", ["altered"] * 3),
    ],
)
def test_tampering_with_the_chain_itself_is_reported(sealed, tamper, problems):
    sql(sealed, tamper)
    assert sorted(p.category for p in verify(sealed).problems) == problems


def test_review_decisions_are_chained_and_tampering_with_one_is_reported(world):
    ingest(world, range(1, 3))
    with world.sessions() as session:
        finding = Finding(key="borderline:x", kind="borderline_match", site_id=SITE, detail="near miss")
        session.add(finding)
        session.flush()
        session.add(
            ReviewDecision(
                finding_id=finding.id,
                event_id=str(uuid.uuid4()),
                site_id=SITE,
                device_id=DEVICE,
                guard_id="G-1",
                decision="confirmed",
                reason="same person, face half covered by the cap",
                decided_by="supervisor-li",
                decided_at=datetime(2026, 4, 10, 9, 0),
            )
        )
        session.commit()
    assert seal(world).sealed.get("review") == 1
    report = verify(world)
    assert report.intact and report.checked["review"] == 1, report.problems
    sql(world, "UPDATE review_decisions SET decision = 'rejected'")
    problems = verify(world).problems
    assert [p.category for p in problems] == ["modified"]
    assert problems[0].message.startswith("modified: review decision 1 (event ")
