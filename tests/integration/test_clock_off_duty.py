"""A terminal whose clock is hours off: its events are flagged or re-dated, and the duty log is still right."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from protocol.events import build_heartbeat, encode
from protocol.topics import events_topic, heartbeat_topic
from server.db import make_engine, make_sessionmaker
from server.duty.rosters_csv import SHIFT_COLUMNS
from server.duty.service import import_roster, import_shifts, recompute
from server.duty.tables import DutyRecordRow
from server.ingest import Ingestor
from server.models import Event, Finding
from server.registry import add_device
from tests.support.events import signed_event

SITE, DEVICE, GUARD, BOOT = "site-a", "gate-1", "G-1", "2d8b4e3f-1b79-4c5b-9c2e-8b3b2e3f4f5c"
DAY = date(2026, 11, 2)
# The guard's real day in Shanghai (UTC+8): in at 07:55, out at 16:05, for the 08:00-16:00 shift.
REAL_IN = datetime(2026, 11, 1, 23, 55, tzinfo=UTC)
REAL_OUT = datetime(2026, 11, 2, 8, 5, tzinfo=UTC)
CLOCK_ERROR = timedelta(hours=5)  # the terminal's wall clock runs 5 h fast and knows it is unsynced
BOOTED = REAL_IN - timedelta(hours=1)  # monotonic 0


def monotonic(moment: datetime) -> float:
    return (moment - BOOTED).total_seconds()


@pytest.fixture
def env(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        _t, secret = add_device(session, SITE, DEVICE)
        shift = f"day,{SITE}-gate,{SITE},Day,08:00,16:00,30,5,5,,Asia/Shanghai"
        import_shifts(session, ",".join(SHIFT_COLUMNS) + "\n" + shift + "\n")
        import_roster(session, f"date,shift_id,guard_id\n{DAY},day,{GUARD}\n")
        session.commit()
    ingestor = Ingestor(sessions)

    def punch(seq: int, kind: str, real: datetime) -> None:
        payload = signed_event(
            secret,
            SITE,
            DEVICE,
            seq=seq,
            type=kind,
            guard_id=GUARD,
            captured_at=real + CLOCK_ERROR,
            clock_synced=False,
            monotonic_s=monotonic(real),
            boot_id=BOOT,
        )
        assert ingestor.handle(events_topic(SITE, DEVICE), encode(payload)).stored

    def synced_heartbeat(real: datetime) -> None:
        beat = build_heartbeat(
            sent_at=real, outbox_depth=0, clock_synced=True, version="1", monotonic_s=monotonic(real), boot_id=BOOT
        )
        assert ingestor.handle(heartbeat_topic(SITE, DEVICE), beat).stored

    yield sessions, punch, synced_heartbeat
    engine.dispose()


def duty(sessions) -> DutyRecordRow:
    with sessions() as session:
        recompute(session, [SITE], DAY, DAY, datetime.now(UTC))
        session.commit()
        return session.scalar(select(DutyRecordRow).where(DutyRecordRow.guard_id == GUARD))


def test_a_clock_hours_off_is_flagged_then_re_dated_and_the_duty_log_is_right(env):
    sessions, punch, synced_heartbeat = env
    punch(1, "check_in", REAL_IN)
    punch(2, "check_out", REAL_OUT)
    with sessions() as session:
        assert {e.clock_status for e in session.scalars(select(Event))} == {"unverified"}
        assert session.scalar(select(Finding).where(Finding.kind == "clock_unsynced")) is not None
    # Taken at face value the claimed times would make the guard 5 h late and leave no shift at all.
    assert duty(sessions).status != "present"

    synced_heartbeat(REAL_OUT + timedelta(minutes=30))  # NTP came back: the same boot now knows the time

    with sessions() as session:
        events = {e.type: e for e in session.scalars(select(Event))}
    assert {e.clock_status for e in events.values()} == {"corrected"}
    assert events["check_in"].corrected_at == REAL_IN.replace(tzinfo=None)
    assert events["check_out"].corrected_at == REAL_OUT.replace(tzinfo=None)
    assert events["check_in"].captured_at == (REAL_IN + CLOCK_ERROR).replace(tzinfo=None)  # the claim is kept
    record = duty(sessions)
    assert (record.status, record.late_minutes, record.early_leave_minutes) == ("present", 0, 0)
    assert record.minutes_worked == 490  # 07:55 to 16:05 at the real times
