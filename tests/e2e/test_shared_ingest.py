"""Two ingest processes share one subscription ($share on Mosquitto): every event stored once, both work."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from protocol.events import encode
from protocol.topics import events_topic
from server.db import make_engine, make_sessionmaker
from server.models import Event
from server.registry import add_device
from tests.support.brokers import RestartableBroker, mosquitto_binary
from tests.support.events import signed_event
from tests.support.mqtt_client import TestClient
from tests.support.services import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        mosquitto_binary() is None,
        reason="shared subscriptions need Mosquitto (or EMQX); the embedded amqtt broker has none",
    ),
]
EVENTS = 1000


def test_two_ingest_processes_split_the_load_without_duplicates(tmp_path, db_url):
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        secrets = {f"gate-{i}": add_device(session, "site-a", f"gate-{i}")[1] for i in range(2)}
        session.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    procs = []
    try:
        for i in range(2):
            with open(tmp_path / f"ingest-{i}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "guardpost", "ingest", "--share-group", "ingest"],
                        env={
                            **env,
                            "GUARDPOST_DB": db_url,
                            "GUARDPOST_MQTT": broker.url,
                            "GUARDPOST_INGEST_CLIENT_ID": f"ingest-{i}",
                        },
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        wait_for(
            lambda: all("ingest connected" in (tmp_path / f"ingest-{i}.log").read_text() for i in range(2)),
            30,
            "both ingest processes connected",
        )
        time.sleep(0.5)
        client = TestClient(broker.url)
        infos = [
            client.client.publish(
                events_topic("site-a", device), encode(signed_event(secret, "site-a", device, seq=seq)), qos=1
            )
            for seq in range(1, EVENTS // 2 + 1)
            for device, secret in secrets.items()
        ]
        for info in infos:  # paho drops what it has not sent when the client disconnects
            info.wait_for_publish(30)
        client.close()

        def stored() -> int:
            with sessions() as session:
                return session.scalar(select(func.count()).select_from(Event))

        wait_for(lambda: stored() == EVENTS, 120, f"{EVENTS} events stored")
        time.sleep(1.0)
        assert stored() == EVENTS  # and no more: nothing stored twice
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=20)
        broker.stop()
        engine.dispose()
    counts = [
        int(re.search(r"stored (\d+) new", (tmp_path / f"ingest-{i}.log").read_text()).group(1)) for i in range(2)
    ]
    assert sum(counts) == EVENTS and min(counts) > 0, counts
