"""Ingest benchmark: signed QoS 1 events through a real broker into the database, against a bare subscriber."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine, func, select

from benchmarks.ingest_load import (
    STALL_S,
    Publishers,
    Share,
    cpu_name,
    database,
    make_events,
    purge_session,
    register,
    wait,
)
from benchmarks.ingest_load import broker as mqtt_broker
from benchmarks.ingest_process import ingest_process
from protocol.mqtt_url import MqttUrl
from server.broker_probe import speaks_mqtt5
from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.models import Event
from server.mqtt_ingest import IN_FLIGHT, IngestService, wait_connected
from server.paho_speedups import install as install_paho_speedups

POLL_S = 0.005
RAW_QUIET_S = 3.0  # the bare subscriber got nothing for this long: the rest was dropped


@dataclass(frozen=True)
class Run:
    events: int
    terminals: int
    processes: int
    mqtt_url: str
    db_url: str
    site: str
    v5: bool
    window: int


@dataclass(frozen=True)
class Phase:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def raw_phase(run: Run, shares: list[Share]) -> Phase:
    """A bare paho subscriber with ingest's connection settings that only counts what arrives."""
    broker = MqttUrl.parse(run.mqtt_url)
    got = {"n": 0, "last": 0.0}
    done = threading.Event()
    subscribed = threading.Event()
    # The same window as the ingest phase: a smaller one would hold the bare subscriber back (at 300 it
    # passed ~20 % fewer events on a 2-core machine).
    publishers = Publishers(run.mqtt_url, shares, run.window, by_acks=False)

    def on_message(_c, _u, _m) -> None:
        got["n"] += 1
        got["last"] = time.time()
        publishers.progress.consumed = got["n"]
        if got["n"] == run.events:
            done.set()

    kwargs = {"protocol": mqtt.MQTTv5} if run.v5 else {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{uuid.uuid4().hex[:8]}", **kwargs)
    client.username_pw_set(broker.username or "bench-raw", broker.password)
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    if run.v5:
        # Without one, Mosquitto allows 20 unacked plus max_queued_messages (1000) queued, then drops.
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = IN_FLIGHT
        client.connect(broker.host, broker.port, properties=props)
    else:
        client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.subscribe(f"guardpost/v1/{run.site}/+/events", qos=1)
        wait(subscribed.is_set, 10, "the raw subscription")
        publishers.go()
        started, _published = publishers.finished()
        while not done.wait(RAW_QUIET_S) and time.time() - got["last"] < RAW_QUIET_S:
            pass
        if got["n"] < run.events:
            # Rare, and only on a loaded machine: rate what arrived rather than stop the run.
            print(
                f"  note: the broker dropped {run.events - got['n']} of {run.events} messages for the bare subscriber"
            )
        return Phase("raw pass-through (bare subscriber)", got["n"], got["last"] - started)
    finally:
        client.disconnect()
        client.loop_stop()


def ingest_phase(run: Run, shares: list[Share], engine: Engine, folder: Path) -> Phase:
    """First publish to the last committed row: all events acked (ingest acks after the commit), then counted."""
    before = _count(engine, run.site)
    target = before + run.events
    publishers = Publishers(run.mqtt_url, shares, run.window, by_acks=True)
    with ingest(run, folder):
        publishers.go()
        count, last_change, seen = before, time.monotonic(), 0
        while count < target:
            # Counting is not free (it competes with ingest for the CPU): count once every event is acked.
            time.sleep(POLL_S)
            acked = publishers.progress.acked
            if acked >= run.events:
                count = _count(engine, run.site)
            if acked != seen:
                seen, last_change = acked, time.monotonic()
            elif time.monotonic() - last_change > STALL_S:
                count = _count(engine, run.site)
                if count >= target:
                    break  # stored, though some acks never arrived
                raise SystemExit(
                    f"error: ingest stored {count - before} of {run.events} events and made no progress for "
                    f"{STALL_S:.0f}s (a broker past its max_queued_messages drops QoS 1 messages)"
                )
        finished = time.time()
        started, _published = publishers.finished()
    return Phase(f"ingest ({run.processes} process{'es' if run.processes > 1 else ''})", run.events, finished - started)


def _median_phase(phases: list[Phase]) -> Phase:
    """The round with the median rate (the lower middle one of an even count)."""
    ranked = sorted(phases, key=lambda p: p.rate)
    return ranked[(len(ranked) - 1) // 2]


def _count(engine: Engine, site: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Event).where(Event.site_id == site)).scalar_one()


@contextmanager
def ingest(run: Run, folder: Path) -> Iterator[None]:
    """The real ingest: in this process when P is 1, else P ``guardpost ingest`` processes in one share group."""
    client_ids = [f"bench-ingest-{uuid.uuid4().hex[:8]}-{i}" for i in range(run.processes)]
    with ExitStack() as stack:
        for client_id in client_ids:
            stack.callback(purge_session, run.mqtt_url, client_id)
        if run.processes == 1:
            settings = ServerSettings(db_url=run.db_url, mqtt_url=run.mqtt_url, ingest_client_id=client_ids[0])
            engine = make_engine(run.db_url)
            stack.callback(engine.dispose)
            service = IngestService(settings, make_sessionmaker(engine))
            service.start()
            stack.callback(_print_batches, service)
            stack.callback(service.stop)
            if not wait_connected(service, 30):
                raise SystemExit("error: ingest could not connect")
        else:
            group = f"bench-{uuid.uuid4().hex[:6]}"
            for i, client_id in enumerate(client_ids):
                log = folder / f"ingest-{i}.log"
                stack.enter_context(ingest_process(run.db_url, run.mqtt_url, log, client_id, group))
        yield


def _print_batches(service: IngestService) -> None:
    stats = service.writer.stats
    if stats.batches:
        size = stats.messages / stats.batches
        print(f"  ingest: {stats.messages} messages in {stats.batches} batches ({size:.0f} a batch)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=10000, help="events per phase (default 10000)")
    parser.add_argument("--terminals", type=int, default=10, help="terminals, one publisher client each (default 10)")
    parser.add_argument("--processes", type=int, default=1, help="ingest processes; more than 1 share a group")
    parser.add_argument("--window", type=int, default=1000, help="most events a terminal has unacked (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds of (raw, ingest); medians count")
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted (default 1)")
    args = parser.parse_args(argv)
    if min(args.events, args.terminals, args.processes, args.repeat) < 1 or args.warmup < 0:
        parser.error("--events, --terminals, --processes and --repeat must be at least 1, --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ingest's paho decodes MQTT 5 messages with shared property tables; the bare subscriber does the same.
    speedups = "on" if install_paho_speedups() else "unavailable"
    # On a shared broker ingest also gets others' traffic, refused here as unknown terminals: not news.
    logging.getLogger("guardpost.ingest").setLevel(logging.ERROR)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gp-bench-")))
        mqtt_url, broker_what = stack.enter_context(mqtt_broker())
        db_url, db_what = stack.enter_context(database(folder))
        host = MqttUrl.parse(mqtt_url)
        v5 = speaks_mqtt5(host, "bench-probe")
        site = f"bench-{uuid.uuid4().hex[:6]}"
        run = Run(args.events, args.terminals, args.processes, mqtt_url, db_url, site, v5, args.window)
        engine = make_engine(db_url)
        stack.callback(engine.dispose)
        secrets = register(engine, run.site, run.terminals)
        print(f"GuardPost ingest benchmark: {run.events} signed events per phase from {run.terminals} terminals, QoS 1")
        print(f"  broker: {broker_what} (MQTT {'5' if v5 else '3.1.1'}); database: {db_what}")
        print(f"  machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"  paho MQTT 5 decode speed-up (ingest and bare subscriber alike): {speedups}")
        raws, ingests = [], []
        for round_ in range(args.warmup + args.repeat):
            raw_round = raw_phase(run, make_events(run.site, secrets, run.events, 1))
            first_seq = 1 + round_ * (-(-run.events // run.terminals))
            ingest_round = ingest_phase(run, make_events(run.site, secrets, run.events, first_seq), engine, folder)
            if round_ < args.warmup:
                # A fresh process and schema: statement caches, plans and the database's files warm up.
                print(f"  warm-up round: raw {raw_round.rate:.0f}/s, ingest {ingest_round.rate:.0f}/s (not counted)")
                continue
            raws.append(raw_round)
            ingests.append(ingest_round)
        raw, ingested = _median_phase(raws), _median_phase(ingests)
        print()
        print("| phase | events | seconds | events/s |")
        print("|---|---|---|---|")
        for phase in (raw, ingested):
            print(f"| {phase.name} | {phase.events} | {phase.seconds:.3f} | {phase.rate:.0f} |")
        if args.repeat > 1:
            print(f"  rounds: raw {[round(p.rate) for p in raws]}, ingest {[round(p.rate) for p in ingests]}")
            # Each round's own ratio: on a shared machine both phases of a round see much the same load.
            ratios = sorted(i.rate / r.rate for r, i in zip(raws, ingests, strict=True))
            best = max(p.rate for p in ingests) / max(p.rate for p in raws)
            print(
                f"  ratio within a round: min {ratios[0]:.2f}, median {statistics.median(ratios):.2f}, "
                f"max {ratios[-1]:.2f}; best ingest round / best raw round {best:.2f}"
            )
        print(f"ingest_rate={ingested.rate:.0f} raw_rate={raw.rate:.0f} ratio={ingested.rate / raw.rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
