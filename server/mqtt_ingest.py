"""MQTT side of ingest: persistent QoS 1 subscription, broker and terminal acks only after commit."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict

import paho.mqtt.client as mqtt
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from protocol.events import MAX_ACK_IDS, build_ack
from protocol.topics import acks_topic, subscription
from server.config import ServerSettings, parse_mqtt_url
from server.ingest import Ingestor, Outcome

log = logging.getLogger("guardpost.ingest")
SUBSCRIBED_KINDS = ("events", "status", "heartbeat")
DB_RETRY_MAX_S = 30.0
BATCH_SIZE = 200
BATCH_WAIT_S = 0.05
QUEUE_MAX = 2000


class IngestService:
    """Owns one paho client; a writer thread commits what arrives in batches, then acks the whole batch."""

    def __init__(
        self,
        settings: ServerSettings,
        sessions: sessionmaker[Session],
        *,
        persistent: bool = True,
        batch_size: int = BATCH_SIZE,
        batch_wait_s: float = BATCH_WAIT_S,
    ):
        self._settings = settings
        self._ingestor = Ingestor(sessions)
        self._batch_size, self._batch_wait_s = batch_size, batch_wait_s
        self._stopping = threading.Event()
        # Bounded: when the database falls behind, paho's thread waits here and the broker holds the rest.
        self._queue: queue.Queue[mqtt.MQTTMessage] = queue.Queue(maxsize=QUEUE_MAX)
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self.connected = threading.Event()
        self.stored = 0
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.ingest_client_id,
            # A persistent session makes the broker keep QoS 1 messages for us while we are down.
            clean_session=not persistent,
            manual_ack=True,
        )
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)

    def start(self) -> None:
        broker = parse_mqtt_url(self._settings.mqtt_url)
        # Brokers keep queued messages only for identified clients, so ingest always presents a username.
        self.client.username_pw_set(broker.username or self._settings.ingest_client_id, broker.password)
        self._writer.start()
        # connect_async lets the loop keep retrying when the broker is not up yet.
        self.client.connect_async(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
        self._writer.join(timeout=10)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            log.error("broker refused the ingest connection: %s", reason_code)
            return
        client.subscribe([(subscription(kind, self._settings.share_group), 1) for kind in SUBSCRIBED_KINDS])
        self.connected.set()
        log.info("ingest connected to %s", parse_mqtt_url(self._settings.mqtt_url).redacted())

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("ingest lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        while not self._stopping.is_set():
            try:
                self._queue.put(message, timeout=0.5)
                return
            except queue.Full:
                continue

    def _next_batch(self) -> list[mqtt.MQTTMessage]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self._batch_wait_s
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        while not self._stopping.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            try:
                outcomes = self._handle_with_retry([(m.topic, m.payload) for m in batch])
            except Exception:  # the writer must outlive anything; unacked messages come back from the broker
                log.exception("ingest batch failed; its messages stay unacknowledged")
                self._stopping.wait(1.0)
                continue
            if outcomes is None:
                return  # stopping: the unacked messages come back from the broker
            self._acknowledge(batch, outcomes)

    def _acknowledge(self, batch: list[mqtt.MQTTMessage], outcomes: list[Outcome]) -> None:
        """Terminal acks first (grouped per terminal), then the broker's PUBACKs, in arrival order."""
        by_terminal: dict[tuple[str, str], list[str]] = defaultdict(list)
        for outcome in outcomes:
            if outcome.ack_event_id and outcome.site_id and outcome.device_id:
                by_terminal[(outcome.site_id, outcome.device_id)].append(outcome.ack_event_id)
            self.stored += outcome.stored and outcome.kind == "events"
        for (site_id, device_id), ids in by_terminal.items():
            for i in range(0, len(ids), MAX_ACK_IDS):
                self.client.publish(acks_topic(site_id, device_id), build_ack(ids[i : i + MAX_ACK_IDS]), qos=1)
        for message in batch:
            self.client.ack(message.mid, message.qos)

    def _handle_with_retry(self, messages: list[tuple[str, bytes]]) -> list[Outcome] | None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                return self._ingestor.handle_batch(messages)
            except (OperationalError, InterfaceError) as exc:
                # Database unreachable: hold the messages (unacked) and retry, never drop them.
                log.error("database unavailable while ingesting (%s); retrying in %.1fs", exc.__class__.__name__, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)
            except Exception as exc:  # a message that breaks a rule we did not foresee must not stop ingest
                if len(messages) > 1:
                    return self._one_by_one(messages)  # find the one that breaks, keep the rest
                log.exception("unexpected error ingesting a message on %s", messages[0][0][:200])
                return [self._ingestor.record_reject(messages[0][0], None, messages[0][1], "internal_error", repr(exc))]
        return None

    def _one_by_one(self, messages: list[tuple[str, bytes]]) -> list[Outcome] | None:
        outcomes: list[Outcome] = []
        for message in messages:
            if self._stopping.is_set():
                return None
            done = self._handle_with_retry([message])
            if done is None:
                return None  # stopping: nothing of this batch is acked, the broker redelivers it
            outcomes += done
        return outcomes


def run_forever(service: IngestService, stop: threading.Event) -> None:
    service.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()
        log.info("ingest stopped; it stored %d new event(s)", service.stored)


def wait_connected(service: IngestService, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.connected.wait(0.1):
            return True
    return False
