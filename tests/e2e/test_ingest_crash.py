"""`guardpost ingest` SIGKILLed before and after its commit, mid-stream: no event lost, none stored twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from protocol.events import build_heartbeat, encode
from protocol.faults import CRASH_AT_ENV, CRASH_MARKER_ENV, CRASH_SKIP_ENV, SERVER_POINTS
from protocol.topics import events_topic, heartbeat_topic
from server.db import make_engine, make_sessionmaker
from server.models import Event, Terminal
from server.registry import add_device
from tests.support.brokers import RestartableBroker, mosquitto_binary
from tests.support.events import signed_event
from tests.support.mqtt_client import TestClient
from tests.support.services import wait_for
from tests.support.stack import purge_session, unique

pytestmark = pytest.mark.slow

EVENTS = 300


def start_ingest(tmp_path, db_url: str, mqtt_url: str, client_id: str, crash: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    env |= {"GUARDPOST_DB": db_url, "GUARDPOST_MQTT": mqtt_url, "GUARDPOST_INGEST_CLIENT_ID": client_id} | crash
    with open(tmp_path / "ingest.log", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "guardpost", "ingest"], env=env, stdout=log, stderr=log)


@pytest.fixture
def mosquitto_url(tmp_path, mqtt_url):
    """The configured broker, else a private Mosquitto: the embedded amqtt broker does not resend the
    in-flight QoS 1 messages of a subscriber that died, so it cannot be the subject of this test."""
    if os.environ.get("MQTT_URL"):
        yield mqtt_url
        return
    if mosquitto_binary() is None:
        pytest.skip("needs Mosquitto (apt-get install mosquitto) or MQTT_URL: amqtt drops a dead subscriber's messages")
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    yield broker.url
    broker.stop()


@pytest.mark.parametrize("point", SERVER_POINTS)
def test_ingest_killed_around_its_commit_loses_and_duplicates_nothing(tmp_path, db_url, mosquitto_url, point):
    mqtt_url = mosquitto_url
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    site, device, client_id = unique("site"), unique("gate"), unique("ingest-crash")
    with sessions() as session:
        _t, secret = add_device(session, site, device)
        session.commit()

    def stored() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(Event).where(Event.device_id == device))

    def heard_heartbeat() -> bool:
        terminal.publish(heartbeat_topic(site, device), build_heartbeat(outbox_depth=0, clock_synced=True, version="t"))
        with sessions() as session:
            return session.get(Terminal, device).last_seen_at is not None

    marker = tmp_path / "crashed"
    # It stores its first batch (the heartbeat), then dies at the point on the next one.
    crash = {CRASH_AT_ENV: point, CRASH_MARKER_ENV: str(marker), CRASH_SKIP_ENV: "1"}
    terminal = TestClient(mqtt_url)
    ingest = start_ingest(tmp_path, db_url, mqtt_url, client_id, crash)
    try:
        wait_for(heard_heartbeat, 60, "ingest to store a heartbeat (its session is subscribed)")
        for seq in range(1, EVENTS + 1):
            terminal.publish(events_topic(site, device), encode(signed_event(secret, site, device, seq=seq)))
            if seq % 100 == 0:
                time.sleep(0.5)  # three bursts, so the crash lands on a batch of events with more to come
        assert ingest.wait(timeout=60) == -signal.SIGKILL, (tmp_path / "ingest.log").read_text()[-2000:]
        assert marker.read_text() == point
        partial = stored()
        # Before its commit the batch in hand is lost to the database (the broker still holds it); after it,
        # even the last batch may be in while the broker never heard the acks.
        assert partial < EVENTS if point == "ingest_before_commit" else partial <= EVENTS
        ingest = start_ingest(tmp_path, db_url, mqtt_url, client_id, {})
        wait_for(lambda: stored() == EVENTS, 90, f"all {EVENTS} events after the restart (had {partial})")
        # Redeliveries of what was committed but not acked are acked again and store nothing.
        terminal.publish(heartbeat_topic(site, device), build_heartbeat(outbox_depth=0, clock_synced=True, version="t"))
        with sessions() as session:
            seqs = session.scalars(select(Event.seq).where(Event.device_id == device).order_by(Event.seq)).all()
        assert seqs == list(range(1, EVENTS + 1))
    finally:
        if ingest.poll() is None:
            ingest.send_signal(signal.SIGTERM)
            ingest.wait(timeout=30)
        terminal.close()
        purge_session(mqtt_url, client_id)
        engine.dispose()
