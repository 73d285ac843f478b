"""Duty logs in the database: the scripted month, late events, corrections with an audit trail."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from server.db import make_engine, make_sessionmaker
from server.duty.service import ImportRejected, correct, import_roster, import_shifts, recompute, recompute_dirty
from server.duty.tables import DutyCorrection, DutyRecordRow, RosterRow
from server.models import Event, Finding
from server.registry import RegistryError, add_device
from tests.support.month import scripted_month


@pytest.fixture(scope="module")
def month():
    return scripted_month()


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _event_row(p: dict, seq: int) -> Event:
    return Event(
        event_id=p["event_id"],
        device_id=p["device_id"],
        site_id=p["site_id"],
        seq=seq,
        type=p["type"],
        method=p["method"],
        guard_id=p["guard_id"],
        captured_at=p["at"].astimezone(UTC).replace(tzinfo=None),
        clock_synced=True,
        distance=p["distance"],
        margin=None,
        liveness=p["liveness"],
        payload={},
    )


def _load(sessions, month, punches):
    with sessions() as session:
        import_shifts(session, month.shifts_csv())
        import_roster(session, month.roster_csv())
        for site_id, device_id in month.devices.items():
            add_device(session, site_id, device_id)
        session.add_all(_event_row(p, i) for i, p in enumerate(punches, 1))
        session.commit()


def test_the_scripted_month_gives_exactly_the_scripted_duty_log(sessions, month):
    _load(sessions, month, month.punches)
    with sessions() as session:
        done = recompute(session, month.sites, month.first_date, month.last_date, month.now)
        session.commit()
        statuses = Counter(session.scalars(select(DutyRecordRow.status)))
        worked = sum(session.scalars(select(DutyRecordRow.minutes_worked)))
        kinds = Counter(session.scalars(select(Finding.kind)))
    expected = month.expected
    assert dict(statuses) == dict(expected.statuses)
    assert worked == expected.minutes_worked
    assert kinds["missed_patrol"] == expected.missed_patrols and kinds["handover_gap"] == expected.handover_gaps
    assert done.records == sum(expected.statuses.values())


def test_late_events_from_a_backlog_change_the_log_and_resolve_findings(sessions, month):
    # A terminal was offline: its check-ins for the first day arrive only later.
    first_day = [
        p
        for p in month.punches
        if p["at"] < datetime.combine(month.first_date, datetime.min.time(), UTC) + timedelta(days=1)
    ]
    later = [p for p in month.punches if p not in first_day]
    _load(sessions, month, later)
    with sessions() as session:
        recompute(session, month.sites, month.first_date, month.last_date, month.now)
        session.commit()
        absent_before = session.scalar(select(DutyRecordRow).where(DutyRecordRow.status == "absent").limit(1))
        assert absent_before is not None
        open_absences = len(session.scalars(select(Finding).where(Finding.kind == "absent")).all())
        from server.duty.service import dirty_days_for_events, mark_dirty

        rows = [_event_row(p, 100000 + i) for i, p in enumerate(first_day)]
        session.add_all(rows)
        mark_dirty(session, dirty_days_for_events(session, rows))
        session.commit()
        done = recompute_dirty(session, month.now)
        session.commit()
        statuses = Counter(session.scalars(select(DutyRecordRow.status)))
        resolved = session.scalars(select(Finding).where(Finding.resolved_at.is_not(None))).all()
    assert dict(statuses) == dict(month.expected.statuses)
    assert done.findings_resolved == len(resolved) > 0 and len(resolved) <= open_absences + done.findings_resolved


def test_corrections_keep_who_when_why_and_the_old_value_and_survive_recompute(sessions, month):
    _load(sessions, month, month.punches)
    with sessions() as session:
        recompute(session, month.sites, month.first_date, month.last_date, month.now)
        row = session.scalar(select(DutyRecordRow).where(DutyRecordRow.status == "absent").limit(1))
        key = dict(guard_id=row.guard_id, shift_id=row.shift_id, day=row.date)
        with pytest.raises(RegistryError, match="needs a reason"):
            correct(session, **key, field="status", value="present", reason=" ", by="supervisor-li")
        correct(session, **key, field="status", value="present", reason="sick note; covered by G-2", by="supervisor-li")
        session.commit()
        recompute(session, month.sites, month.first_date, month.last_date, month.now)  # must not undo it
        session.commit()
        again = session.scalar(
            select(DutyRecordRow).where(
                DutyRecordRow.guard_id == row.guard_id,
                DutyRecordRow.shift_id == row.shift_id,
                DutyRecordRow.date == row.date,
            )
        )
        audit = session.scalar(select(DutyCorrection))
    assert again.status == "present" and again.corrected
    assert (audit.old_value, audit.new_value, audit.corrected_by) == ("absent", "present", "supervisor-li")
    assert audit.reason == "sick note; covered by G-2" and audit.corrected_at is not None


def test_a_bad_roster_row_imports_nothing(sessions, month):
    with sessions() as session:
        import_shifts(session, month.shifts_csv())
        bad = month.roster_csv() + "2026-04-02,no-such-shift,G-1\n"
        with pytest.raises(ImportRejected) as info:
            import_roster(session, bad)
        bad_line = len(bad.splitlines())
        assert [line for line, _message in info.value.errors] == [bad_line]
        assert "no-such-shift" in info.value.errors[0][1]
        assert not any(isinstance(row, RosterRow) for row in session.new)  # not one of the good rows either
        session.flush()
        assert session.scalar(select(RosterRow).limit(1)) is None
