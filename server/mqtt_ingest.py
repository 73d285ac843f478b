"""MQTT side of ingest: persistent QoS 1 subscription; broker and terminal acks only after the batch commits."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import fields
from functools import partial

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.orm import Session, sessionmaker

from protocol.topics import subscription
from server.broker_probe import speaks_mqtt5
from server.config import ServerSettings, parse_mqtt_url
from server.ingest import Ingestor, Message
from server.ingest_writer import BatchWriter, Pending
from server.models import utcnow
from server.mqtt_acks import ack_all
from server.mqtt_auth import configure_broker_auth
from server.paho_buffered_read import BufferedReadClient
from server.paho_speedups import install as install_paho_speedups

log = logging.getLogger("guardpost.ingest")
SUBSCRIBED_KINDS = ("events", "status", "heartbeat")
# Unacked messages the broker may send us at once (MQTT 5 Receive Maximum) and the writer's queue size:
# the bound on ingest's memory, and large enough for full batches while the previous one commits.
IN_FLIGHT = 1000
NEVER_EXPIRES = 0xFFFFFFFF
DEFAULT_CLIENT_ID = next(f.default for f in fields(ServerSettings) if f.name == "ingest_client_id")


def session_identity(settings: ServerSettings) -> tuple[str, bool]:
    """The client id to use and whether its session may outlive the process.

    Members of a share group must not share a client id (the broker would keep disconnecting one for the
    other). Without an id of its own, a member takes one from its host and pid, and a session that ends
    with the process: a session left behind would keep being dealt its share of messages.
    """
    if settings.share_group and settings.ingest_client_id == DEFAULT_CLIENT_ID:
        return f"{DEFAULT_CLIENT_ID}-{socket.gethostname()}-{os.getpid()}", False
    return settings.ingest_client_id, True


class IngestService:
    """Owns one paho client; its thread only queues messages, the writer thread stores them in batches."""

    def __init__(
        self,
        settings: ServerSettings,
        sessions: sessionmaker[Session],
        *,
        persistent: bool = True,
        max_batch: int = 500,
        max_wait_s: float = 0.05,
        stats_every_s: float = 60.0,
    ):
        self._settings = settings
        install_paho_speedups()  # ~10 us less per MQTT 5 message on the thread that reads the broker
        self._client_id, own_id = session_identity(settings)
        self._persistent = persistent and own_id
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        # Bumped when the broker forgets our session: mids from before then mean nothing to it any more.
        self._generation = 0
        self.connected = threading.Event()  # connected and subscribed
        self.client: mqtt.Client | None = None
        self.writer = BatchWriter(
            Ingestor(sessions),
            publish=self._publish,
            ack=self._broker_ack,
            capacity=IN_FLIGHT,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            stats_every_s=stats_every_s,
        )
        self._connector = threading.Thread(target=self._connect, name="ingest-connect", daemon=True)

    def start(self) -> None:
        """Returns at once; the connection is made (and retried while the broker is down) in the background."""
        self.writer.start()
        self._connector.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._connector.is_alive():
            self._connector.join(10)
        self.writer.stop()  # acks for the batch in hand still go out on the open connection
        with self._lock:
            client = self.client
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def _connect(self) -> None:
        broker = parse_mqtt_url(self._settings.mqtt_url)
        # Brokers keep queued messages only for identified clients, so ingest always presents a username.
        username = broker.username or self._client_id
        auth = partial(configure_broker_auth, settings=self._settings, fallback_username=username)  # and TLS
        delay = 1.0
        while True:
            try:
                v5 = speaks_mqtt5(broker, username, configure=auth)
                break
            except OSError as exc:
                log.warning("broker %s unreachable (%s); retrying in %.0fs", broker.redacted(), exc, delay)
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, 10.0)
        client = self._client(v5)
        client.username_pw_set(username, broker.password)
        auth(client)
        with self._lock:
            if self._stopping.is_set():
                return
            self.client = client
            if v5:
                props = Properties(PacketTypes.CONNECT)
                props.ReceiveMaximum = IN_FLIGHT
                props.SessionExpiryInterval = NEVER_EXPIRES if self._persistent else 0
                # clean_start=False resumes our session, so the broker keeps QoS 1 messages for us while we are down.
                client.connect_async(
                    broker.host, broker.port, keepalive=30, clean_start=not self._persistent, properties=props
                )
            else:
                client.connect_async(broker.host, broker.port, keepalive=30)
            client.loop_start()

    def _client(self, v5: bool) -> mqtt.Client:
        # Reads the broker in large chunks: ~14 us a message instead of paho's ~40 (benchmarks/README.md).
        common = {"client_id": self._client_id, "manual_ack": True}
        if v5:
            client = BufferedReadClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, **common)
        else:
            # A persistent session makes the broker keep QoS 1 messages for us while we are down.
            client = BufferedReadClient(mqtt.CallbackAPIVersion.VERSION2, clean_session=not self._persistent, **common)
        client.max_inflight_messages_set(100)  # our own outgoing acks to terminals
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        return client

    def _on_connect(self, client: mqtt.Client, _userdata, flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            log.error("broker refused the ingest connection: %s", reason_code)
            return
        if not flags.session_present:
            self._generation += 1
        client.subscribe([(subscription(kind, self._settings.share_group), 1) for kind in SUBSCRIBED_KINDS])
        group = f" in share group {self._settings.share_group}" if self._settings.share_group else ""
        log.info(
            "ingest connected to %s as %s%s (MQTT %s, %s session)",
            parse_mqtt_url(self._settings.mqtt_url).redacted(),
            self._client_id,
            group,
            "5" if client.protocol == mqtt.MQTTv5 else "3.1.1",
            "persistent" if self._persistent else "clean",
        )

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _props) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error("broker refused ingest's subscriptions: %s", ", ".join(refused))
        else:
            self.connected.set()  # only now: an event published before the SUBACK could miss a new session
            log.info(
                "ingest subscribed to %s",
                ", ".join(subscription(k, self._settings.share_group) for k in SUBSCRIBED_KINDS),
            )

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("ingest lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        received = Message(message.topic, message.payload, utcnow())
        # False when stopping: the message stays unacked and the broker redelivers it.
        self.writer.submit(Pending(received, message.mid, message.qos, self._generation))

    def _publish(self, topic: str, payload: bytes) -> None:
        if self.client is not None:
            self.client.publish(topic, payload, qos=1)

    def _broker_ack(self, batch: list[Pending]) -> None:
        if self.client is None:
            return
        # Mids from before the broker forgot our session mean nothing to it; QoS 0 needs no ack.
        current = [p for p in batch if p.qos > 0 and p.generation == self._generation]
        if all(p.qos == 1 for p in current):
            ack_all(self.client, [p.mid for p in current])
        else:  # QoS 2, which our QoS 1 subscriptions never get: paho's own way, one by one
            for p in current:
                self.client.ack(p.mid, p.qos)


def run_forever(service: IngestService, stop: threading.Event) -> None:
    service.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()
        log.info("ingest stopped; it stored %d new event(s)", service.writer.stats.stored)


def wait_connected(service: IngestService, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.connected.wait(0.1):
            return True
    return False
