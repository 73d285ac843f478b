"""Several ingest processes in one MQTT share group split the load: every event stored once, by one of them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from protocol.events import encode
from protocol.topics import events_topic
from server.config import parse_mqtt_url
from server.db import make_engine, make_sessionmaker
from server.models import Event
from server.registry import add_device
from tests.support.brokers import RestartableBroker, mosquitto_binary
from tests.support.events import signed_event
from tests.support.services import wait_for
from tests.support.stack import purge_session, unique

PER_PUBLISHER = 500


def _client(url: str, name: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique(name))
    client.username_pw_set("guardpost-test")
    client.connect(*parse_mqtt_url(url).address)
    client.loop_start()
    return client


def shares_subscriptions(url: str) -> bool:
    """Two members of a $share group: a broker that supports it hands each message to exactly one of them."""
    topic, got = f"guardpost-test/share-probe/{uuid.uuid4().hex}", []
    group = f"$share/{unique('probe')}/{topic}"
    members = [_client(url, "share-probe") for _ in range(2)]
    publisher = _client(url, "share-probe-pub")
    try:
        for member in members:
            member.on_message = lambda _c, _u, m: got.append(m.payload)
            member.subscribe(group, qos=1)
        time.sleep(0.5)
        for i in range(6):
            publisher.publish(topic, str(i).encode(), qos=1).wait_for_publish(5)
        time.sleep(0.5)
        return sorted(got) == sorted(str(i).encode() for i in range(6))
    finally:
        for client in (*members, publisher):
            client.disconnect()
            client.loop_stop()


@pytest.fixture
def share_broker(mqtt_url, tmp_path) -> Iterator[str]:
    """The test broker when it has shared subscriptions; without MQTT_URL a private Mosquitto may stand in."""
    if shares_subscriptions(mqtt_url):
        yield mqtt_url
        return
    if os.environ.get("MQTT_URL"):
        pytest.fail(f"MQTT_URL={mqtt_url} does not deliver $share subscriptions; ingest processes cannot share load")
    if mosquitto_binary() is None:
        pytest.skip("the embedded amqtt broker has no shared subscriptions ($share) and Mosquitto is not installed")
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


def start_ingest(log: Path, client_id: str, group: str, db_url: str, mqtt_url: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    env |= {"GUARDPOST_DB": db_url, "GUARDPOST_MQTT": mqtt_url, "GUARDPOST_INGEST_CLIENT_ID": client_id}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "guardpost", "ingest", "--share-group", group],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def final_stats(log: Path) -> dict[str, int]:
    """The counts in the last 'ingest stats' line a process logged (it logs one when it stops)."""
    lines = [line for line in log.read_text().splitlines() if "ingest stats:" in line]
    assert lines, f"no stats line in {log.name}:\n{log.read_text()[-2000:]}"
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", lines[-1].split("ingest stats:")[1])}


def test_two_ingest_processes_in_a_share_group_store_every_event_once(share_broker, db_url, tmp_path):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    site, devices = unique("site"), [unique("gate") for _ in range(2)]
    with sessions() as session:
        secrets = {device: add_device(session, site, device)[1] for device in devices}
        session.commit()
    group, client_ids = unique("share"), [unique("ingest-share") for _ in range(2)]
    logs = [tmp_path / f"ingest-{i}.log" for i in range(2)]
    procs = [start_ingest(log, cid, group, db_url, share_broker) for log, cid in zip(logs, client_ids, strict=True)]
    publishers = [_client(share_broker, "share-pub") for _ in devices]
    try:
        for proc, log in zip(procs, logs, strict=True):
            wait_for(lambda p=proc, f=log: p.poll() is not None or "ingest subscribed" in f.read_text(), 30, log.name)
            assert proc.poll() is None, log.read_text()[-2000:]
        sent = {d: [signed_event(secrets[d], site, d, seq=seq) for seq in range(1, PER_PUBLISHER + 1)] for d in devices}
        infos = [
            publisher.publish(events_topic(site, device), encode(event), qos=1)
            for publisher, device in zip(publishers, devices, strict=True)
            for event in sent[device]
        ]
        for info in infos:
            info.wait_for_publish(30)

        def stored() -> int:
            with sessions() as session:
                return session.scalar(select(func.count()).select_from(Event).where(Event.site_id == site))

        wait_for(lambda: stored() == 2 * PER_PUBLISHER, 120, "every event stored")
        time.sleep(0.5)  # anything stored twice would show up now
        with sessions() as session:
            rows = session.execute(
                select(Event.device_id, Event.seq, Event.event_id).where(Event.site_id == site)
            ).all()
        assert len(rows) == 2 * PER_PUBLISHER == len({r.event_id for r in rows})
        for device in devices:
            assert sorted(r.seq for r in rows if r.device_id == device) == list(range(1, PER_PUBLISHER + 1))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        for publisher in publishers:
            publisher.disconnect()
            publisher.loop_stop()
        for client_id in client_ids:
            purge_session(share_broker, client_id)
        engine.dispose()
    stats = [final_stats(log) for log in logs]
    assert all(s["stored"] > 0 for s in stats), f"one process got nothing: {stats}"
    assert sum(s["stored"] for s in stats) == 2 * PER_PUBLISHER
