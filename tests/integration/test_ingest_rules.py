"""Ingest rules against the real database: store once, verify, and record every reject with a reason."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from protocol.events import build_heartbeat, build_status, encode
from protocol.topics import events_topic, heartbeat_topic, status_topic
from server.db import make_engine, make_sessionmaker
from server.ingest import Ingestor, Message
from server.models import Event, Reject, Terminal, utcnow
from server.registry import add_device
from tests.support.events import signed_event

SITE, DEVICE = "site-a", "gate-1"


@pytest.fixture
def env(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        _t, secret = add_device(session, SITE, DEVICE)
        session.commit()
    yield Ingestor(sessions), sessions, secret
    engine.dispose()


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def reasons(sessions) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Reject.reason).order_by(Reject.id)))


def test_valid_event_is_stored_once_and_acked_every_time(env):
    ingestor, sessions, secret = env
    payload = encode(signed_event(secret, SITE, DEVICE, seq=1))
    first = ingestor.handle(events_topic(SITE, DEVICE), payload)
    again = ingestor.handle(events_topic(SITE, DEVICE), payload)
    assert first.stored and not first.duplicate
    assert again.duplicate and not again.stored
    assert first.ack_event_id == again.ack_event_id == json.loads(payload)["event_id"]
    assert count(sessions, Event) == 1
    with sessions() as session:
        row = session.scalar(select(Event))
        assert (row.guard_id, row.seq, row.type, row.distance) == ("G-1", 1, "check_in", 0.31)
        assert session.get(Terminal, DEVICE).last_seq == 1


@pytest.mark.parametrize(
    "topic, make_payload, reason",
    [
        (events_topic(SITE, DEVICE), lambda s: b"{oops", "malformed_json"),
        (
            events_topic(SITE, DEVICE),
            lambda s: encode({**signed_event(s, SITE, DEVICE), "schema": "guardpost.event.v0"}),
            "unsupported_schema",
        ),
        (events_topic(SITE, DEVICE), lambda s: encode(signed_event("forged", SITE, DEVICE)), "bad_signature"),
        (events_topic(SITE, DEVICE), lambda s: encode(signed_event(s, SITE, "gate-2")), "topic_mismatch"),
        (events_topic(SITE, "gate-9"), lambda s: encode(signed_event(s, SITE, "gate-9")), "unknown_terminal"),
        (events_topic("site-b", DEVICE), lambda s: encode(signed_event(s, "site-b", DEVICE)), "wrong_topic"),
        ("guardpost/v1/only/three", lambda s: b"{}", "wrong_topic"),
        (events_topic(SITE, DEVICE), lambda s: b" " * (64 * 1024 + 1), "oversized"),
        (events_topic(SITE, DEVICE), lambda s: b'{"schema":"guardpost.event.v1","seq":"\\u0000"}', "invalid_schema"),
    ],
)
def test_rejects_are_recorded_with_their_reason(env, topic, make_payload, reason):
    ingestor, sessions, secret = env
    outcome = ingestor.handle(topic, make_payload(secret))
    assert outcome.reject_reason == reason and outcome.ack_event_id is None
    assert reasons(sessions) == [reason]
    assert count(sessions, Event) == 0
    # a valid event right after still lands
    assert ingestor.handle(events_topic(SITE, DEVICE), encode(signed_event(secret, SITE, DEVICE))).stored


def test_tampered_event_is_refused(env):
    ingestor, sessions, secret = env
    event = signed_event(secret, SITE, DEVICE)
    event["guard_id"] = "G-SOMEONE-ELSE"
    assert ingestor.handle(events_topic(SITE, DEVICE), encode(event)).reject_reason == "bad_signature"


def test_disabled_terminal_is_refused(env):
    ingestor, sessions, secret = env
    with sessions() as session:
        session.get(Terminal, DEVICE).enabled = False
        session.commit()
    assert (
        ingestor.handle(events_topic(SITE, DEVICE), encode(signed_event(secret, SITE, DEVICE))).reject_reason
        == "disabled_terminal"
    )


def test_status_and_heartbeat_update_the_terminal(env):
    ingestor, sessions, _secret = env
    assert ingestor.handle(status_topic(SITE, DEVICE), build_status("online")).stored
    beat = build_heartbeat(outbox_depth=4, clock_synced=False, cpu_temp_c=None, disk_free_mb=512.0, version="0.1.0")
    assert ingestor.handle(heartbeat_topic(SITE, DEVICE), beat).stored
    with sessions() as session:
        terminal = session.get(Terminal, DEVICE)
        assert terminal.online and terminal.heartbeat["outbox_depth"] == 4 and terminal.last_seen_at is not None
    assert ingestor.handle(status_topic(SITE, DEVICE), build_status("offline")).stored
    with sessions() as session:
        assert not session.get(Terminal, DEVICE).online
    assert ingestor.handle(status_topic(SITE, DEVICE), b"online").reject_reason == "malformed_json"
    assert ingestor.handle(status_topic(SITE, DEVICE), b"").reject_reason is None  # a cleared retained status


def test_a_replay_of_an_event_stored_on_another_day_is_acked_but_recorded(env):
    ingestor, sessions, secret = env
    payload = encode(signed_event(secret, SITE, DEVICE, seq=1))
    two_days_ago = utcnow() - timedelta(days=2)
    first = ingestor.handle_batch([Message(events_topic(SITE, DEVICE), payload, two_days_ago)])[0]
    redelivered = ingestor.handle_batch([Message(events_topic(SITE, DEVICE), payload, two_days_ago)])[0]
    assert first.stored and redelivered.duplicate  # a broker's redelivery: acked, nothing recorded
    assert count(sessions, Reject) == 0
    replayed = ingestor.handle(events_topic(SITE, DEVICE), payload)  # the same signed bytes, two days on
    assert replayed.duplicate and not replayed.stored and replayed.ack_event_id == first.ack_event_id
    assert count(sessions, Event) == 1
    with sessions() as session:
        reject = session.scalar(select(Reject))
    assert (reject.reason, reject.device_id) == ("replayed", DEVICE)
    assert reject.detail.startswith(f"event {first.ack_event_id} was stored at ")
