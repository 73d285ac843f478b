"""`guardpost ingest --client-id`: the id names the broker session that keeps events while ingest is down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from protocol.events import encode
from protocol.topics import events_topic
from server.db import make_engine, make_sessionmaker
from server.models import Event
from server.registry import add_device
from tests.support.events import signed_event
from tests.support.mqtt_client import TestClient
from tests.support.services import wait_for
from tests.support.stack import purge_session, unique


def guardpost(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "guardpost", *args], env=base | env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def test_the_flag_names_the_session_that_keeps_events_while_ingest_is_down(mqtt_url, db_url, tmp_path):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    site, device = unique("site"), unique("gate")
    with sessions() as session:
        secret = add_device(session, site, device)[1]
        session.commit()
    client_id, other = unique("ingest-flag"), unique("ingest-env")
    # The flag wins over the environment variable.
    env = {"GUARDPOST_DB": db_url, "GUARDPOST_MQTT": mqtt_url, "GUARDPOST_INGEST_CLIENT_ID": other}
    log = tmp_path / "ingest.log"
    publisher = TestClient(mqtt_url)
    try:
        first = guardpost("ingest", "--client-id", client_id, env=env, log=log)
        wait_for(lambda: first.poll() is not None or "ingest subscribed" in log.read_text(), 30, "ingest subscribed")
        assert first.poll() is None, log.read_text()[-2000:]
        assert f" as {client_id} " in log.read_text() and other not in log.read_text()
        stop(first)
        # Ingest is down: the broker keeps the event for the session the flag named.
        event = signed_event(secret, site, device, seq=1)
        publisher.publish(events_topic(site, device), encode(event))
        second = guardpost("ingest", "--client-id", client_id, env=env, log=log)
        try:
            with sessions() as session:
                query = select(Event.event_id).where(Event.device_id == device)
                wait_for(lambda: session.scalars(query).all() == [event["event_id"]], 30, "the event kept for us")
        finally:
            stop(second)
    finally:
        publisher.close()
        purge_session(mqtt_url, client_id)
        engine.dispose()


def test_a_bad_client_id_is_one_line_and_exit_2(db_url, tmp_path):
    log = tmp_path / "ingest.log"
    proc = guardpost("ingest", "--client-id", "two words", env={"GUARDPOST_DB": db_url}, log=log)
    assert proc.wait(timeout=60) == 2
    assert log.read_text().strip() == (
        "error: ingest client id 'two words' is not valid: use 1-128 letters, digits or -_.:@ "
        "(set --client-id or GUARDPOST_INGEST_CLIENT_ID)"
    )
