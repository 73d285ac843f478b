"""Load for the ingest benchmark: the broker and database to run against, signed events, and the publishers."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import paho.mqtt.client as mqtt
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, text

from guardpost.broker import free_port
from protocol.events import build_event, encode, parse_ack
from protocol.mqtt_url import MqttUrl
from protocol.topics import acks_topic, events_topic, parse_topic
from server.config import normalise_db_url
from server.credentials import add_credential
from server.db import make_sessionmaker
from server.lookup_digests import ServerCipher
from server.registry import add_device, add_guard

STALL_S = 20.0  # no progress for this long: the broker dropped messages or ingest is stuck
BOOT_ID = "0b6f2c1e-9f57-4a39-9a0c-6f1f0c1e2d3a"
GUARDS = 50
Share = list[tuple[str, bytes]]  # one publisher's (topic, payload) list


@contextmanager
def broker() -> Iterator[tuple[str, str]]:
    """MQTT_URL, else an embedded amqtt broker on a free port; yields (url, what)."""
    url = os.environ.get("MQTT_URL")
    if url:
        yield url, f"broker at {url}"
        return
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardpost", "broker", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait(lambda: port_open(port), 30, "the embedded broker")
        yield f"mqtt://127.0.0.1:{port}", f"embedded amqtt broker on port {port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def database(folder: Path) -> Iterator[tuple[str, str]]:
    """A fresh schema in DATABASE_URL's PostgreSQL, else a SQLite file; yields (url, what)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield f"sqlite:///{folder}/bench.db", "SQLite file (WAL, synchronous=FULL)"
        return
    admin = create_engine(normalise_db_url(url))
    schema = f"gp_bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        version = conn.execute(text("SHOW server_version")).scalar()
    sep = "&" if "?" in url else "?"
    try:
        yield f"{normalise_db_url(url)}{sep}options={quote(f'-csearch_path={schema}')}", f"PostgreSQL {version}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit(f"error: timed out waiting for {what}")


def register(engine: Engine, site: str, terminals: int) -> dict[str, str]:
    """``terminals`` terminals at ``site``, and its guards, licensed and posted there; returns device_id -> secret.

    Check-ins by unknown or unlicensed guards would each raise compliance findings, which is not the load
    of a working site.
    """
    sessions = make_sessionmaker(engine)
    cipher = ServerCipher(Fernet.generate_key())
    secrets = {}
    with sessions() as session:
        for i in range(terminals):
            _terminal, secret = add_device(session, site, f"{site}-gate-{i}")
            secrets[f"{site}-gate-{i}"] = secret
        for guard_id in guard_ids(site):
            add_guard(session, guard_id, f"Guard {guard_id}", [site])
            add_credential(session, cipher, guard_id, f"BENCH-{guard_id}", kind="certificate")
        session.commit()
    return secrets


def guard_ids(site: str) -> list[str]:
    return [f"{site}-G{i}" for i in range(GUARDS)]


def make_events(site: str, secrets: dict[str, str], events: int, first_seq: int) -> list[Share]:
    """Signed events dealt round-robin to the terminals, seqs from ``first_seq``; one list per publisher."""
    devices = sorted(secrets)
    per: list[Share] = [[] for _ in devices]
    guards = guard_ids(site)
    now = datetime.now(UTC)
    for n in range(events):
        k = n % len(devices)
        device = devices[k]
        event = build_event(
            secret=secrets[device],
            device_id=device,
            site_id=site,
            seq=first_seq + n // len(devices),
            type="check_in",
            method="face",
            guard_id=guards[n % len(guards)],
            captured_at=now,
            clock_synced=True,
            match={"distance": 0.31, "margin": 0.2, "frames": 3, "liveness": "pass"},
            evidence_sha256="ab" * 32,
            monotonic_s=1000.0 + n,
            boot_id=BOOT_ID,
        )
        per[k].append((events_topic(site, device), encode(event)))
    return per


def _publisher(url: str, shares: list[Share], window: int, by_acks: bool, shared, go, report) -> None:
    """Child process: one paho client per terminal, publishing round-robin while at most ``window`` are unconsumed.

    Mosquitto drops QoS 1 messages for a subscriber more than max_queued_messages (1000 by default) behind,
    so publishing faster than the consumer takes them would measure the broker's drops, not the consumer.
    Consumed means counted by the bare subscriber (``shared.consumed``), or, like a terminal's outbox,
    acked by ingest on the terminal's acks topic (``by_acks``; the count goes to ``shared.acked``).
    """
    broker = MqttUrl.parse(url)
    lock = threading.Lock()

    def on_ack(_client, _userdata, message) -> None:
        with lock:
            shared.acked += len(parse_ack(message.payload))

    clients = []
    for i, share in enumerate(shares):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}-{i}")
        client.username_pw_set(broker.username or "bench-publisher", broker.password)
        client.max_inflight_messages_set(window)
        client.on_message = on_ack
        client.connect(broker.host, broker.port)
        client.loop_start()
        if by_acks and share:
            address = parse_topic(share[0][0])
            client.subscribe(acks_topic(address.site_id, address.device_id), qos=1)[1]
        clients.append(client)
    time.sleep(0.3)  # let the ack subscriptions settle
    # Round-robin over the terminals, each terminal's events in seq order.
    order = [(k, share[i]) for i in range(max(map(len, shares))) for k, share in enumerate(shares) if i < len(share)]
    report.send("ready")
    go.recv()
    started = time.time()
    infos = []
    for sent, (k, (topic, payload)) in enumerate(order):
        while sent - (shared.acked if by_acks else shared.consumed) >= window:
            time.sleep(0.0005)
        infos.append(clients[k].publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(120)
    report.send((started, time.time()))
    if by_acks:
        deadline = time.monotonic() + STALL_S
        while shared.acked < len(order) and time.monotonic() < deadline:
            time.sleep(0.01)
    for client in clients:
        client.disconnect()
        client.loop_stop()


class Progress(ctypes.Structure):
    _fields_ = [("consumed", ctypes.c_int64), ("acked", ctypes.c_int64)]


class Publishers:
    """A child process holding the publisher clients, so publishing does not share a GIL with ingest."""

    def __init__(self, url: str, shares: list[Share], window: int, *, by_acks: bool):
        ctx = mp.get_context("spawn")
        self.progress = ctx.RawValue(Progress, 0, 0)  # consumed: written here; acked: written by the child
        self._go_read, self._go = ctx.Pipe(duplex=False)
        self._report, report_write = ctx.Pipe(duplex=False)
        args = (url, shares, window, by_acks, self.progress, self._go_read, report_write)
        self._proc = ctx.Process(target=_publisher, args=args, daemon=True)
        self._proc.start()
        if self._report.recv() != "ready":
            raise SystemExit("error: publishers could not connect")

    def go(self) -> None:
        self._go.send("go")

    def finished(self, timeout: float = 300) -> tuple[float, float]:
        if not self._report.poll(timeout):
            raise SystemExit("error: publishers did not finish")
        started, done = self._report.recv()
        self._proc.join(STALL_S + 10)
        return started, done


def purge_session(url: str, client_id: str) -> None:
    """Leave no persistent session behind on a shared broker."""
    broker = MqttUrl.parse(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.username_pw_set(broker.username or client_id, broker.password)
    try:
        client.connect(broker.host, broker.port)
        client.loop_start()
        client.disconnect()
        client.loop_stop()
    except OSError:
        pass


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
