"""Batched ingest: one transaction per batch, the same rules as one message, failures isolated per message."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import DataError

import server.ingest_store as ingest_store
from protocol.events import build_heartbeat, build_status, encode, parse_ack
from protocol.topics import acks_topic, events_topic, heartbeat_topic, status_topic
from server.config import parse_mqtt_url
from server.db import make_engine, make_sessionmaker
from server.ingest import DatabaseDown, Ingestor, Message
from server.models import Event, Reject, Terminal, utcnow
from server.registry import add_device
from tests.support.events import signed_event
from tests.support.mqtt_client import TestClient
from tests.support.services import wait_for
from tests.support.stack import unique

SITE, DEVICE, OTHER = "site-a", "gate-1", "gate-2"


@pytest.fixture
def env(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        secrets = {device: add_device(session, SITE, device)[1] for device in (DEVICE, OTHER)}
        session.commit()
    yield Ingestor(sessions), sessions, secrets
    engine.dispose()


def message(topic: str, payload: bytes) -> Message:
    return Message(topic, payload, utcnow())


def event_message(secret: str, seq: int, device: str = DEVICE, **fields) -> tuple[Message, str]:
    event = signed_event(secret, SITE, device, seq=seq, **fields)
    return message(events_topic(SITE, device), encode(event)), event["event_id"]


def stored_ids(sessions) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Event.event_id)))


def test_a_batch_stores_each_event_once_and_acks_every_copy(env):
    ingestor, sessions, secrets = env
    old, old_id = event_message(secrets[DEVICE], 1)
    assert ingestor.handle(old.topic, old.payload).stored
    batch, ids = [], []
    for seq in range(2, 7):
        msg, event_id = event_message(secrets[DEVICE if seq % 2 else OTHER], seq, DEVICE if seq % 2 else OTHER)
        batch.append(msg)
        ids.append(event_id)
    batch += [batch[0], old, batch[3]]  # two copies within the batch, one of a stored event
    outcomes = ingestor.handle_batch(batch)
    assert [o.stored for o in outcomes] == [True] * 5 + [False] * 3
    assert [o.duplicate for o in outcomes] == [False] * 5 + [True] * 3
    assert [o.ack_event_id for o in outcomes] == ids + [ids[0], old_id, ids[3]]
    assert stored_ids(sessions) == sorted([old_id, *ids])
    with sessions() as session:
        assert session.get(Terminal, DEVICE).last_seq == 5 and session.get(Terminal, OTHER).last_seq == 6
        row = session.scalar(select(Event).where(Event.event_id == ids[0]))
        assert row.payload == json.loads(batch[0].payload) and row.received_at == batch[0].received_at


def test_bad_messages_in_a_batch_become_rejects_and_the_rest_lands(env):
    ingestor, sessions, secrets = env
    good, good_id = event_message(secrets[DEVICE], 1)
    beat = build_heartbeat(outbox_depth=3, clock_synced=True, cpu_temp_c=None, disk_free_mb=1.0, version="1")
    batch = [
        message(events_topic(SITE, DEVICE), b"{oops"),
        good,
        message(events_topic(SITE, DEVICE), encode(signed_event("forged", SITE, DEVICE, seq=2))),
        message(events_topic(SITE, "gate-9"), encode(signed_event("x", SITE, "gate-9"))),
        message(status_topic(SITE, OTHER), build_status("online")),
        message(heartbeat_topic(SITE, OTHER), beat),
        message("not/a/guardpost/topic", b"{}"),
    ]
    outcomes = ingestor.handle_batch(batch)
    assert [o.reject_reason for o in outcomes] == [
        "malformed_json",
        None,
        "bad_signature",
        "unknown_terminal",
        None,
        None,
        "wrong_topic",
    ]
    assert [o.ack_event_id for o in outcomes if o.ack_event_id] == [good_id]
    assert stored_ids(sessions) == [good_id]
    with sessions() as session:
        reasons = sorted(session.scalars(select(Reject.reason)))
        other = session.get(Terminal, OTHER)
        assert other.online and other.heartbeat["outbox_depth"] == 3
    assert reasons == ["bad_signature", "malformed_json", "unknown_terminal", "wrong_topic"]


def test_a_message_that_breaks_the_batch_is_retried_alone_and_only_it_fails(env, monkeypatch):
    ingestor, sessions, secrets = env
    batch, ids = zip(*(event_message(secrets[DEVICE], seq) for seq in range(1, 6)), strict=True)
    poison = ids[2]
    real_insert = ingest_store.insert_rows

    def insert_rows(session, table, rows):
        if any(row.event_id == poison for row in rows):  # as a value the database refuses would
            raise DataError("INSERT INTO events", {}, Exception("value out of range"))
        real_insert(session, table, rows)

    monkeypatch.setattr(ingest_store, "insert_rows", insert_rows)
    outcomes = ingestor.handle_batch(list(batch))
    assert [o.reject_reason for o in outcomes] == [None, None, "internal_error", None, None]
    assert stored_ids(sessions) == sorted(i for i in ids if i != poison)
    with sessions() as session:
        assert session.scalar(select(Reject.reason)) == "internal_error"


def test_an_event_another_process_stored_meanwhile_is_a_duplicate(env, monkeypatch):
    """The pre-query missed it (a concurrent commit), so the insert hits the unique index: still acked, once."""
    ingestor, sessions, secrets = env
    raced, raced_id = event_message(secrets[DEVICE], 1)
    ingestor.handle_batch([raced])
    real_lookup = ingest_store.stored_event_ids
    calls = []

    def stale_lookup(session, event_ids):
        calls.append(event_ids)
        return {} if len(calls) == 1 else real_lookup(session, event_ids)

    monkeypatch.setattr(ingest_store, "stored_event_ids", stale_lookup)
    fresh, fresh_id = event_message(secrets[DEVICE], 2)
    outcomes = ingestor.handle_batch([raced, fresh])
    assert [(o.duplicate, o.stored, o.ack_event_id) for o in outcomes] == [
        (True, False, raced_id),
        (False, True, fresh_id),
    ]
    assert stored_ids(sessions) == sorted([raced_id, fresh_id])
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reject)) == 0


def test_an_unreachable_database_is_raised_for_the_caller_to_retry(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/missing-folder/guardpost.db")
    ingestor = Ingestor(make_sessionmaker(engine))
    with pytest.raises(DatabaseDown):
        ingestor.handle_batch([message(events_topic(SITE, DEVICE), b"{}")])
    engine.dispose()


def test_a_burst_through_the_broker_is_committed_in_batches_and_acked_per_terminal(stack, mqtt_url):
    site, devices = unique("site"), [unique("gate") for _ in range(2)]
    secrets = {device: stack.add_device(site, device) for device in devices}
    listener = TestClient(mqtt_url)
    for device in devices:
        listener.subscribe(acks_topic(site, device))
    time.sleep(0.2)
    host, port = parse_mqtt_url(mqtt_url).address
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("burst"))
    publisher.username_pw_set("guardpost-test")
    publisher.max_inflight_messages_set(500)
    publisher.connect(host, port)
    publisher.loop_start()
    sent = [signed_event(secrets[d], site, d, seq=seq) for seq in range(1, 151) for d in devices]
    try:
        infos = [publisher.publish(events_topic(e["site_id"], e["device_id"]), encode(e), qos=1) for e in sent]
        for info in infos:
            info.wait_for_publish(30)

        def acked() -> list[str]:
            return [
                i for d in devices for payload in listener.received(acks_topic(site, d)) for i in parse_ack(payload)
            ]

        wait_for(lambda: len(acked()) == len(sent), 60, "every event acked")
        assert sorted(acked()) == sorted(e["event_id"] for e in sent)
        ack_messages = sum(len(listener.received(acks_topic(site, d))) for d in devices)
        assert ack_messages < len(sent) // 4, "acks are grouped per terminal and batch"
        assert stack.ingest.writer.stats.batches < len(sent) // 4, "commits are batched"
        with stack.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Event).where(Event.site_id == site)) == len(sent)
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        listener.close()
