"""Sequence gaps against the real database: raised on a jump, resolved or narrowed when the events arrive."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from protocol.events import encode
from protocol.topics import events_topic
from server.db import make_engine, make_sessionmaker
from server.ingest import Ingestor, Message
from server.models import Finding, Terminal, utcnow
from server.registry import add_device
from tests.support.events import signed_event

SITE, DEVICE = "site-a", "gate-1"
GAPS = Finding.kind == "missing_events"  # events also raise compliance findings (unknown guards here)


@pytest.fixture
def env(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        _t, secret = add_device(session, SITE, DEVICE)
        session.commit()
    events = {}

    def event(seq: int) -> Message:
        # The same seq always gives the same event, so sending it again is a replay.
        if seq not in events:
            events[seq] = encode(signed_event(secret, SITE, DEVICE, seq=seq))
        return Message(events_topic(SITE, DEVICE), events[seq], utcnow())

    yield Ingestor(sessions), sessions, event
    engine.dispose()


def send(ingestor: Ingestor, event, *seqs: int) -> None:
    """Each seq in its own batch, as it would come one at a time."""
    for seq in seqs:
        ingestor.handle_batch([event(seq)])


def gaps(sessions) -> dict[str, tuple[bool, str]]:
    """key -> (still open, detail) of every gap finding."""
    with sessions() as session:
        rows = session.scalars(select(Finding).where(GAPS))
        return {f.key: (f.resolved_at is None, f.detail) for f in rows}


def last_seq(sessions) -> int:
    with sessions() as session:
        return session.get(Terminal, DEVICE).last_seq


def test_events_in_order_raise_nothing(env):
    ingestor, sessions, event = env
    send(ingestor, event, 1, 2, 3)
    assert gaps(sessions) == {} and last_seq(sessions) == 3


def test_a_real_gap_stays_open_with_a_clear_detail(env):
    ingestor, sessions, event = env
    send(ingestor, event, 1, 2, 6, 7)
    assert gaps(sessions) == {"gap:gate-1:3-5": (True, "events 3-5 from gate-1 missing")}
    assert last_seq(sessions) == 7
    with sessions() as session:
        finding = session.scalar(select(Finding).where(GAPS))
        assert (finding.site_id, finding.device_id, finding.resolved_by) == (SITE, DEVICE, None)


def test_out_of_order_delivery_resolves_the_gap_it_opened(env):
    ingestor, sessions, event = env
    send(ingestor, event, 1, 3, 2)
    assert gaps(sessions) == {"gap:gate-1:2-2": (False, "event 2 from gate-1 missing")}
    with sessions() as session:
        assert session.scalar(select(Finding.resolved_by).where(GAPS)) == "ingest"
    assert last_seq(sessions) == 3


def test_disorder_within_one_batch_raises_nothing(env):
    ingestor, sessions, event = env
    ingestor.handle_batch([event(1), event(3), event(4), event(2)])
    assert gaps(sessions) == {} and last_seq(sessions) == 4


def test_replays_of_stored_events_change_nothing(env):
    ingestor, sessions, event = env
    send(ingestor, event, 1, 2, 4)
    send(ingestor, event, 1, 2, 4, 4)
    ingestor.handle_batch([event(2), event(4), event(1)])
    assert gaps(sessions) == {"gap:gate-1:3-3": (True, "event 3 from gate-1 missing")}
    assert last_seq(sessions) == 4


def test_a_gap_that_fills_after_an_outage_is_narrowed_then_resolved(env):
    ingestor, sessions, event = env
    send(ingestor, event, 1, 9)
    with sessions() as session:
        opened_at = session.scalar(select(Finding.created_at).where(GAPS))
    send(ingestor, event, 5)  # the terminal starts replaying its outbox
    assert gaps(sessions) == {
        "gap:gate-1:2-8": (False, "events 2-8 from gate-1 missing"),
        "gap:gate-1:2-4": (True, "events 2-4 from gate-1 missing"),
        "gap:gate-1:6-8": (True, "events 6-8 from gate-1 missing"),
    }
    with sessions() as session:
        narrowed = session.scalars(select(Finding.created_at).where(GAPS, Finding.resolved_at.is_(None)))
        assert set(narrowed) == {opened_at}  # missing since the jump, not since the narrowing
    ingestor.handle_batch([event(s) for s in (2, 3, 4, 6, 7)])
    assert {k: o for k, (o, _d) in gaps(sessions).items() if o} == {"gap:gate-1:8-8": True}
    send(ingestor, event, 8)
    assert not any(still_open for still_open, _detail in gaps(sessions).values())
    assert last_seq(sessions) == 9


def test_a_replay_batch_with_new_events_above_fills_and_opens_together(env):
    ingestor, sessions, event = env
    send(ingestor, event, 1, 4)
    ingestor.handle_batch([event(2), event(3), event(5), event(8)])
    assert {k for k, (o, _d) in gaps(sessions).items() if o} == {"gap:gate-1:6-7"}
    assert last_seq(sessions) == 8
