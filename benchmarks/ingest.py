"""Ingest throughput: signed events from a real broker to committed rows, beside a bare counting subscriber.

python -m benchmarks.ingest [--events N] [--terminals K] [--processes P]
Broker from MQTT_URL (else an embedded one), database from DATABASE_URL (else a temporary SQLite file).
Ends with one line: ingest_rate=<events/s> raw_rate=<events/s> ratio=<float>
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from sqlalchemy import func, select

from protocol.events import build_event, encode
from protocol.topics import events_topic, subscription
from server.config import ServerSettings, parse_mqtt_url
from server.db import make_engine, make_sessionmaker
from server.models import Event
from server.mqtt_ingest import IngestService, wait_connected
from server.registry import add_device
from tests.support.services import database, mqtt_broker
from tests.support.stack import purge_session

# A stock Mosquitto drops QoS 1 messages queued for one subscriber beyond 1000: keep the load closed-loop.
MAX_AHEAD = 800


def _payloads(secrets: dict[str, tuple[str, str]], per_terminal: int, first_seq: int) -> dict[str, list[bytes]]:
    now = datetime.now(UTC)
    return {
        device: [
            encode(
                build_event(
                    secret=secret,
                    device_id=device,
                    site_id=site,
                    seq=first_seq + i,
                    type="check_in",
                    method="face",
                    guard_id=f"G-{i % 50}",
                    captured_at=now,
                    clock_synced=True,
                    match={"distance": 0.3, "margin": 0.2, "frames": 2, "liveness": "pass"},
                    evidence_sha256="ab" * 32,
                )
            )
            for i in range(per_terminal)
        ]
        for device, (site, secret) in secrets.items()
    }


def _publish(mqtt_url: str, payloads: dict[str, list[bytes]], sites: dict[str, str], done) -> float:
    """Publish every payload at QoS 1 from one client per terminal; returns the start time."""
    broker = parse_mqtt_url(mqtt_url)
    clients = []
    for device in payloads:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{device}")
        client.username_pw_set(f"bench-pub-{device}")
        client.max_inflight_messages_set(100)
        client.connect(broker.host, broker.port)
        client.loop_start()
        clients.append(client)
    sent = 0
    started = time.perf_counter()
    rows = list(zip(*[[(device, p) for p in ps] for device, ps in payloads.items()], strict=True))
    infos = []
    for row in rows:
        for client, (device, payload) in zip(clients, row, strict=True):
            infos.append(client.publish(events_topic(sites[device], device), payload, qos=1))
            sent += 1
        while sent - done() > MAX_AHEAD:
            time.sleep(0.002)
    for info in infos:  # disconnecting earlier would drop what paho has not sent yet
        info.wait_for_publish(60)
    for client in clients:
        client.disconnect()
        client.loop_stop()
    return started


def _wait(done, total: int, timeout: float = 600.0) -> float:
    deadline = time.monotonic() + timeout
    while done() < total:
        if time.monotonic() > deadline:
            raise SystemExit(f"error: only {done()} of {total} events arrived within {timeout:.0f}s")
        time.sleep(0.005)
    return time.perf_counter()


def raw_rate(mqtt_url: str, secrets, sites, per_terminal: int) -> float:
    """A bare paho subscriber that only counts: the most the broker and client can pass through."""
    broker = parse_mqtt_url(mqtt_url)
    count = [0]
    lock = threading.Lock()

    def on_message(_c, _u, _m) -> None:
        with lock:
            count[0] += 1

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{uuid.uuid4().hex[:6]}")
    sub.username_pw_set("bench-raw")
    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.subscribe(subscription("events"), qos=1)
    sub.loop_start()
    time.sleep(0.5)
    payloads = _payloads(secrets, per_terminal, first_seq=1)
    total = per_terminal * len(secrets)
    started = _publish(mqtt_url, payloads, sites, lambda: count[0])
    ended = _wait(lambda: count[0], total)
    sub.disconnect()
    sub.loop_stop()
    return total / (ended - started)


def ingest_rate(mqtt_url: str, db_url: str, secrets, sites, per_terminal: int, processes: int, sessions) -> float:
    def stored() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(Event))

    total = per_terminal * len(secrets)
    with ExitStack() as stack:
        if processes == 1:
            settings = ServerSettings(
                db_url=db_url, mqtt_url=mqtt_url, ingest_client_id=f"bench-{uuid.uuid4().hex[:6]}"
            )
            service = IngestService(settings, sessions, persistent=False)
            service.start()
            stack.callback(service.stop)
            assert wait_connected(service, 20), "ingest could not connect"
        else:
            group = f"bench{uuid.uuid4().hex[:6]}"
            env = {**os.environ, "GUARDPOST_DB": db_url, "GUARDPOST_MQTT": mqtt_url}
            for i in range(processes):
                env_i = {**env, "GUARDPOST_INGEST_CLIENT_ID": f"{group}-{i}"}
                proc = subprocess.Popen(
                    [sys.executable, "-m", "guardpost", "ingest", "--share-group", group],
                    env=env_i,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                stack.callback(purge_session, mqtt_url, f"{group}-{i}")  # leave no persistent session behind
                stack.callback(proc.wait, 10)
                stack.callback(proc.terminate)
            time.sleep(3.0)  # let every process connect and subscribe
        # A progress window: counting rows is a query, so poll it at most every 50 ms.
        last = [0, 0.0]

        def done() -> int:
            if time.monotonic() - last[1] > 0.05:
                last[0], last[1] = stored(), time.monotonic()
            return last[0]

        payloads = _payloads(secrets, per_terminal, first_seq=per_terminal + 1)
        started = _publish(mqtt_url, payloads, sites, done)
        ended = _wait(stored, total)
    return total / (ended - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--terminals", type=int, default=4)
    parser.add_argument("--processes", type=int, default=1, help="ingest processes sharing the load ($share)")
    args = parser.parse_args(argv)
    per_terminal = max(1, args.events // args.terminals)
    with ExitStack() as stack:
        mqtt_url = stack.enter_context(mqtt_broker())
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        db_url = stack.enter_context(database(Path(tmp)))
        engine = make_engine(db_url)
        stack.callback(engine.dispose)
        sessions = make_sessionmaker(engine)
        secrets, sites = {}, {}
        with sessions() as session:
            for i in range(args.terminals):
                site, device = f"bench-site-{i}", f"bench-gate-{uuid.uuid4().hex[:6]}"
                secrets[device] = (site, add_device(session, site, device)[1])
                sites[device] = site
            session.commit()
        cpu = platform.processor() or platform.machine()
        print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print(
            f"broker {parse_mqtt_url(mqtt_url).redacted()}, database {engine.dialect.name}, "
            f"{per_terminal * args.terminals} events from {args.terminals} terminals, QoS 1"
        )
        raw = raw_rate(mqtt_url, secrets, sites, per_terminal)
        print(f"raw pass-through (bare paho subscriber): {raw:,.0f} events/s")
        rate = ingest_rate(mqtt_url, db_url, secrets, sites, per_terminal, args.processes, sessions)
        print(f"ingest with {args.processes} process(es), committed rows: {rate:,.0f} events/s")
    print(f"ingest_rate={rate:.1f} raw_rate={raw:.1f} ratio={rate / raw:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
