"""An in-process server stack for integration tests: database, web app over real HTTP, ingest on a real broker."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.fernet import Fernet
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from guardpost.broker import free_port
from server.config import ServerSettings, parse_mqtt_url
from server.crypto import generate_key_file, load_cipher
from server.db import make_engine, make_sessionmaker
from server.mqtt_ingest import IngestService, wait_connected
from server.registry import add_device
from server.users import add_user
from server.web import create_app


def unique(prefix: str) -> str:
    """Ids unique to one test, so tests sharing a real broker never see each other's terminals."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Stack:
    settings: ServerSettings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: Fernet
    key_file: Path
    http_url: str
    token: str
    ingest: IngestService

    def api(self, path: str) -> Any:
        request = urllib.request.Request(self.http_url + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    def add_device(self, site_id: str, device_id: str) -> str:
        with self.sessions() as session:
            _terminal, secret = add_device(session, site_id, device_id)
            session.commit()
        return secret


def purge_session(mqtt_url: str, client_id: str) -> None:
    """Drop a persistent session left on a shared broker by a test's ingest client."""
    host, port = parse_mqtt_url(mqtt_url).address
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.username_pw_set(client_id)
    try:
        client.connect(host, port)
        client.loop_start()
        client.disconnect()
        client.loop_stop()
    except OSError:
        pass


@contextmanager
def running_stack(tmp_path: Path, mqtt_url: str, db_url: str, **settings: Any) -> Iterator[Stack]:
    """``settings``: more ServerSettings fields, such as the broker credentials and CA."""
    key_file = tmp_path / "server.key"
    generate_key_file(key_file)
    port = free_port()
    settings = ServerSettings(
        db_url=db_url,
        mqtt_url=mqtt_url,
        bind=f"127.0.0.1:{port}",
        key_file=key_file,
        ingest_client_id=unique("ingest-test"),
        **settings,
    )
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    cipher = load_cipher(key_file)
    app = create_app(settings, engine=engine, cipher=cipher)
    http = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    with sessions() as session:
        _user, token = add_user(session, unique("tester"), "admin")
        session.commit()
    stack = Stack(
        settings,
        engine,
        sessions,
        cipher,
        key_file,
        f"http://127.0.0.1:{port}",
        token,
        IngestService(settings, sessions),
    )
    stack.ingest.start()
    try:
        assert wait_connected(stack.ingest, 20), f"ingest could not connect to {mqtt_url}"
        yield stack
    finally:
        # The test may have replaced the service (a restart): stop the one running now, or it reconnects
        # after the purge below and leaves a persistent session on a shared broker.
        stack.ingest.stop()
        purge_session(mqtt_url, settings.ingest_client_id)
        http.shutdown()
        engine.dispose()
