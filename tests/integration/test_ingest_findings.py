"""Ingest in the database: sequence gaps raised and closed, unsynced clocks re-dated, batches stored once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from protocol.events import build_heartbeat, encode
from protocol.topics import events_topic, heartbeat_topic
from server.db import make_engine, make_sessionmaker
from server.ingest import Ingestor
from server.models import Event, Finding
from server.registry import add_device
from tests.support.events import signed_event

SITE, DEVICE = "site-a", "gate-1"
TOPIC = events_topic(SITE, DEVICE)


@pytest.fixture
def env(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        _t, secret = add_device(session, SITE, DEVICE)
        session.commit()
    yield Ingestor(sessions), sessions, secret
    engine.dispose()


def open_findings(sessions, kind):
    with sessions() as session:
        return sorted(session.scalars(select(Finding.key).where(Finding.kind == kind, Finding.resolved_at.is_(None))))


def test_a_gap_is_raised_and_closes_when_the_missing_events_arrive(env):
    ingestor, sessions, secret = env
    events = {seq: encode(signed_event(secret, SITE, DEVICE, seq=seq)) for seq in range(1, 8)}
    ingestor.handle_batch([(TOPIC, events[s]) for s in (1, 2, 5, 7)])
    assert open_findings(sessions, "missing_events") == ["gap:gate-1:3-4", "gap:gate-1:6-6"]
    ingestor.handle(TOPIC, events[3])  # the outbox replays after an outage
    assert open_findings(sessions, "missing_events") == ["gap:gate-1:4-4", "gap:gate-1:6-6"]
    ingestor.handle_batch([(TOPIC, events[4]), (TOPIC, events[6]), (TOPIC, events[6])])
    assert open_findings(sessions, "missing_events") == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 7


def test_duplicates_inside_one_batch_are_stored_once_and_all_acked(env):
    ingestor, sessions, secret = env
    payload = encode(signed_event(secret, SITE, DEVICE, seq=1))
    outcomes = ingestor.handle_batch([(TOPIC, payload)] * 3 + [(TOPIC, b"{bad")])
    assert [o.stored for o in outcomes] == [True, False, False, False]
    assert [o.duplicate for o in outcomes[:3]] == [False, True, True]
    assert len({o.ack_event_id for o in outcomes[:3]}) == 1 and outcomes[3].reject_reason == "malformed_json"


def test_unsynced_events_are_flagged_then_re_dated_by_a_synced_heartbeat_of_the_same_boot(env):
    ingestor, sessions, secret = env
    wrong = datetime(1970, 1, 1, 0, 5, tzinfo=UTC)  # a Pi that booted without its time
    event = signed_event(
        secret, SITE, DEVICE, seq=1, captured_at=wrong, clock_synced=False, boot_id="b0a7c0de-1111", monotonic_s=40.0
    )
    ingestor.handle(TOPIC, encode(event))
    assert open_findings(sessions, "clock_unsynced") == ["clock:gate-1:b0a7c0de-1111"]
    with sessions() as session:
        row = session.scalar(select(Event))
        assert (row.clock_status, row.corrected_at) == ("unverified", None)
    synced_at = datetime.now(UTC).replace(microsecond=0)
    beat = build_heartbeat(
        sent_at=synced_at,
        outbox_depth=0,
        clock_synced=True,
        cpu_temp_c=None,
        disk_free_mb=1.0,
        version="0.2.0",
        monotonic_s=100.0,
        boot_id="b0a7c0de-1111",
    )
    ingestor.handle(heartbeat_topic(SITE, DEVICE), beat)
    with sessions() as session:
        row = session.scalar(select(Event))
        assert row.clock_status == "corrected"
        assert row.corrected_at == (synced_at - timedelta(seconds=60)).replace(tzinfo=None)
        assert row.captured_at == wrong.replace(tzinfo=None)  # the terminal's claim is kept as it was
