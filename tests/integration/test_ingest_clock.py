"""Unsynced terminal clocks: events re-dated from same-boot heartbeats or events, retroactively too, else flagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from protocol.events import build_heartbeat, encode
from protocol.topics import events_topic, heartbeat_topic
from server.db import make_engine, make_sessionmaker
from server.ingest import Ingestor
from server.models import Event, Finding
from server.registry import add_device
from tests.support.events import signed_event

SITE, DEVICE = "site-a", "gate-1"
BOOT, NEXT_BOOT = "0b6f2c1e-9f57-4a39-9a0c-6f1f0c1e2d3a", "1c7a3d2f-0a68-4b4a-8b1d-7a2a1d2f3e4b"
# The moment NTP came up, 1000 s after boot; the unsynced clock still thought it was 1970.
SYNCED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
UNSYNCED_WALL = datetime(1970, 1, 1, tzinfo=UTC)


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@pytest.fixture
def env(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        _t, secret = add_device(session, SITE, DEVICE)
        session.commit()
    ingestor = Ingestor(sessions)
    seqs = iter(range(1, 1000))

    def event(monotonic_s: float, *, synced: bool = False, boot: str | None = BOOT) -> str:
        captured = SYNCED_AT + timedelta(seconds=monotonic_s - 1000) if synced else UNSYNCED_WALL
        payload = signed_event(
            secret,
            SITE,
            DEVICE,
            seq=next(seqs),
            captured_at=captured,
            clock_synced=synced,
            monotonic_s=monotonic_s,
            boot_id=boot,
        )
        assert ingestor.handle(events_topic(SITE, DEVICE), encode(payload)).stored
        return payload["event_id"]

    def heartbeat(*, synced: bool = True, boot: str = BOOT, monotonic_s: float = 1000.0) -> None:
        beat = build_heartbeat(
            sent_at=SYNCED_AT if synced else UNSYNCED_WALL,
            outbox_depth=0,
            clock_synced=synced,
            version="1",
            monotonic_s=monotonic_s,
            boot_id=boot,
        )
        assert ingestor.handle(heartbeat_topic(SITE, DEVICE), beat).stored

    yield sessions, event, heartbeat
    engine.dispose()


def clock(sessions, event_id: str) -> tuple[str, datetime | None]:
    with sessions() as session:
        row = session.scalar(select(Event).where(Event.event_id == event_id))
        return row.clock_status, row.corrected_at


def clock_findings(sessions) -> dict[str, bool]:
    """key -> still open."""
    with sessions() as session:
        rows = session.scalars(select(Finding).where(Finding.kind == "clock_unsynced"))
        return {f.key: f.resolved_at is None for f in rows}


def test_a_synced_event_keeps_its_time_and_the_terminals_claim_is_kept(env):
    sessions, event, _heartbeat = env
    event_id = event(1500.0, synced=True)
    assert clock(sessions, event_id) == ("synced", naive(SYNCED_AT + timedelta(seconds=500)))
    assert clock_findings(sessions) == {}


def test_an_unsynced_event_after_a_synced_heartbeat_of_its_boot_is_corrected(env):
    sessions, event, heartbeat = env
    heartbeat()
    event_id = event(400.0)
    assert clock(sessions, event_id) == ("corrected", naive(SYNCED_AT - timedelta(seconds=600)))
    with sessions() as session:  # the terminal's own claim stays as it was
        assert session.scalar(select(Event.captured_at).where(Event.event_id == event_id)) == naive(UNSYNCED_WALL)
    assert clock_findings(sessions) == {}


def test_events_before_the_heartbeat_are_corrected_when_it_arrives(env):
    sessions, event, heartbeat = env
    first, second = event(100.0), event(700.0)
    assert clock(sessions, first) == ("unverified", None)
    assert clock_findings(sessions) == {f"clock:gate-1:{BOOT}": True}  # one finding per boot, not per event
    heartbeat(synced=False, monotonic_s=800.0)  # still unsynced: nothing to go by
    assert clock(sessions, second) == ("unverified", None)
    heartbeat()
    assert clock(sessions, first) == ("corrected", naive(SYNCED_AT - timedelta(seconds=900)))
    assert clock(sessions, second) == ("corrected", naive(SYNCED_AT - timedelta(seconds=300)))
    assert clock_findings(sessions) == {f"clock:gate-1:{BOOT}": False}
    with sessions() as session:
        assert session.scalar(select(Finding.resolved_by).where(Finding.kind == "clock_unsynced")) == "ingest"


def test_a_later_synced_event_of_the_same_boot_dates_the_earlier_ones(env):
    sessions, event, _heartbeat = env
    early = event(200.0)
    event(1200.0, synced=True)
    assert clock(sessions, early) == ("corrected", naive(SYNCED_AT - timedelta(seconds=800)))
    assert clock_findings(sessions) == {f"clock:gate-1:{BOOT}": False}


def test_a_heartbeat_of_another_boot_dates_nothing_and_the_boot_stays_flagged(env):
    sessions, event, heartbeat = env
    heartbeat(boot=NEXT_BOOT)
    event_id = event(400.0)
    assert clock(sessions, event_id) == ("unverified", None)
    assert clock_findings(sessions) == {f"clock:gate-1:{BOOT}": True}


def test_a_replay_after_a_reboot_is_dated_from_stored_events_of_its_boot(env):
    """The terminal rebooted (its heartbeat names the new boot) and replays an old unsynced event."""
    sessions, event, heartbeat = env
    event(1100.0, synced=True)
    heartbeat(boot=NEXT_BOOT, monotonic_s=50.0)
    replayed = event(900.0)
    assert clock(sessions, replayed) == ("corrected", naive(SYNCED_AT - timedelta(seconds=100)))
    assert clock_findings(sessions) == {}


def test_events_without_a_boot_id_cannot_be_verified(env):
    sessions, event, heartbeat = env
    heartbeat()
    event_id = event(400.0, boot=None)
    assert clock(sessions, event_id) == ("unverified", None)
    assert clock_findings(sessions) == {"clock:gate-1:no-boot-id": True}
