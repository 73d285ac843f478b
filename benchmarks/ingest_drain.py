"""Drain mode of the scale-out benchmark: a backlog queued while ingest is down, then P processes drain it."""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from sqlalchemy import Engine, func, select

from benchmarks.ingest_load import make_events, purge_session, register
from benchmarks.ingest_process import IngestProcess, ingest_process
from protocol.mqtt_url import MqttUrl
from server.models import Event

POLL_S = 0.01
STALL_S = 30.0


@dataclass(frozen=True)
class Drain:
    processes: int
    events: int
    seconds: float  # from the first stored row to the last
    skew_s: float  # between the first and the last process subscribing
    stored: int
    distinct: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def drain(
    engine: Engine, db_url: str, mqtt_url: str, folder: Path, processes: int, events: int, terminals: int
) -> Drain:
    """Queue ``events`` for a share group of ``processes`` offline members, then time them draining it."""
    site = f"drain-{uuid.uuid4().hex[:6]}"
    secrets = register(engine, site, terminals)
    group = f"drain-{uuid.uuid4().hex[:6]}"
    ids = [f"bench-drain-{uuid.uuid4().hex[:8]}-{i}" for i in range(processes)]
    logs = [folder / f"{group}-{i}.log" for i in range(processes)]
    # Each member's persistent session joins the group once; the broker then deals the backlog among them.
    with ExitStack() as stack:
        for client_id, log in zip(ids, logs, strict=True):
            stack.enter_context(ingest_process(db_url, mqtt_url, log, client_id, group, report=False))
    _publish(mqtt_url, make_events(site, secrets, events, 1))
    drain_logs = [log.with_suffix(".drain.log") for log in logs]
    members = [IngestProcess(db_url, mqtt_url, log, cid, group) for cid, log in zip(ids, drain_logs, strict=True)]
    try:
        first_at = first_count = None
        count, last_change = 0, time.monotonic()
        while count < events:
            time.sleep(POLL_S)
            for member in members:
                member.subscribed()
            now_count = _count(engine, site)
            if now_count and first_at is None:
                first_at, first_count = time.monotonic(), now_count
            if now_count != count:
                count, last_change = now_count, time.monotonic()
            elif time.monotonic() - last_change > STALL_S:
                raise SystemExit(f"error: {processes} ingest process(es) stored {count} of {events} and then stalled")
        finished = time.monotonic()
    finally:
        for member in members:
            member.stop()
            # A session left in the group would be dealt a share of every later event on that broker.
            purge_session(mqtt_url, member.client_id)
    subscribed = [m.subscribed_at for m in members if m.subscribed_at is not None]
    skew = max(subscribed) - min(subscribed) if len(subscribed) > 1 else 0.0
    stored, distinct = _totals(engine, site)
    return Drain(processes, events - first_count, finished - first_at, skew, stored, distinct)


def _publish(mqtt_url: str, shares) -> None:
    """Every event published at QoS 1 and accepted by the broker (PUBACK) before ingest starts."""
    broker = MqttUrl.parse(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-drain-pub-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(broker.username or "bench-publisher", broker.password)
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        order = [
            item for i in range(max(map(len, shares))) for share in shares if i < len(share) for item in [share[i]]
        ]
        infos = [client.publish(topic, payload, qos=1) for topic, payload in order]
        for info in infos:
            info.wait_for_publish(120)
    finally:
        client.disconnect()
        client.loop_stop()


def _count(engine: Engine, site: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Event).where(Event.site_id == site)).scalar_one()


def _totals(engine: Engine, site: str) -> tuple[int, int]:
    with engine.connect() as conn:
        query = select(func.count(), func.count(Event.event_id.distinct())).where(Event.site_id == site)
        stored, distinct = conn.execute(query).one()
    return stored, distinct
