"""MQTT side of ingest: persistent QoS 1 subscription, broker and terminal acks only after commit."""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from protocol.events import build_ack
from protocol.topics import acks_topic, subscription
from server.config import ServerSettings, parse_mqtt_url
from server.ingest import Ingestor, Outcome

log = logging.getLogger("guardpost.ingest")
SUBSCRIBED_KINDS = ("events", "status", "heartbeat")
DB_RETRY_MAX_S = 30.0


class IngestService:
    """Owns one paho client; messages are handled on paho's network thread, one at a time."""

    def __init__(self, settings: ServerSettings, sessions: sessionmaker[Session], *, persistent: bool = True):
        self._settings = settings
        self._ingestor = Ingestor(sessions)
        self._stopping = threading.Event()
        self.connected = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.ingest_client_id,
            # A persistent session makes the broker keep QoS 1 messages for us while we are down.
            clean_session=not persistent,
            manual_ack=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)

    def start(self) -> None:
        broker = parse_mqtt_url(self._settings.mqtt_url)
        # Brokers keep queued messages only for identified clients, so ingest always presents a username.
        self.client.username_pw_set(broker.username or self._settings.ingest_client_id, broker.password)
        # connect_async lets the loop keep retrying when the broker is not up yet.
        self.client.connect_async(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
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

    def _on_message(self, client: mqtt.Client, _userdata, message: mqtt.MQTTMessage) -> None:
        outcome = self._handle_with_retry(message.topic, message.payload)
        if outcome is None:
            return  # stopping: leave the message unacked so the broker redelivers it
        if outcome.ack_event_id and outcome.site_id and outcome.device_id:
            client.publish(acks_topic(outcome.site_id, outcome.device_id), build_ack([outcome.ack_event_id]), qos=1)
        client.ack(message.mid, message.qos)

    def _handle_with_retry(self, topic: str, payload: bytes) -> Outcome | None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                return self._ingestor.handle(topic, payload)
            except (OperationalError, InterfaceError) as exc:
                # Database unreachable: hold the message (unacked) and retry, never drop it.
                log.error("database unavailable while ingesting (%s); retrying in %.1fs", exc.__class__.__name__, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)
            except Exception as exc:  # a message that breaks a rule we did not foresee must not stop ingest
                log.exception("unexpected error ingesting a message on %s", topic[:200])
                return self._ingestor.record_reject(topic, None, payload, "internal_error", repr(exc))
        return None


def run_forever(service: IngestService, stop: threading.Event) -> None:
    service.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()


def wait_connected(service: IngestService, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.connected.wait(0.1):
            return True
    return False
