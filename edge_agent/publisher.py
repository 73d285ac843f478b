"""MQTT link of a terminal: retained status with Last Will, QoS 1 events from the outbox, acks back in."""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt

from edge_agent.outbox import Outbox
from protocol.events import ProtocolError, build_status, parse_ack
from protocol.faults import crash_point
from protocol.mqtt_tls import TlsFiles, apply_tls
from protocol.mqtt_url import MqttUrl
from protocol.topics import acks_topic, events_topic, heartbeat_topic, status_topic

log = logging.getLogger("guardpost.agent.publisher")


class Publisher:
    def __init__(
        self,
        device_id: str,
        site_id: str,
        mqtt_url: str,
        outbox: Outbox,
        keepalive_s: int = 30,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: TlsFiles | None = None,
    ):
        self._site, self._device = site_id, device_id
        self._outbox = outbox
        self._keepalive = keepalive_s
        broker = MqttUrl.parse(mqtt_url)
        self._host, self._port = broker.host, broker.port
        self.connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"guardpost-{device_id}")
        # The terminal identifies itself by its device id: the broker's ACL allows it only its own topics.
        self._client.username_pw_set(username or broker.username or device_id, password or broker.password)
        if broker.tls:
            apply_tls(self._client, tls or TlsFiles())
        self._client.will_set(status_topic(site_id, device_id), build_status("offline"), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._warned_down = False

    def start(self) -> None:
        # connect_async + loop_start: paho keeps retrying while the broker is down; nothing blocks capture.
        self._client.connect_async(self._host, self._port, keepalive=self._keepalive)
        self._client.loop_start()

    def stop(self) -> None:
        if self.connected.is_set():
            self._client.publish(status_topic(self._site, self._device), build_status("offline"), qos=1, retain=True)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u, _f, reason_code, _p) -> None:
        if reason_code.is_failure:
            log.error("broker %s:%s refused the terminal: %s", self._host, self._port, reason_code)
            return
        client.subscribe(acks_topic(self._site, self._device), qos=1)
        client.publish(status_topic(self._site, self._device), build_status("online"), qos=1, retain=True)
        self._outbox.mark_all_unsent()
        self._warned_down = False
        self.connected.set()
        log.info("connected to broker %s:%s", self._host, self._port)

    def _on_disconnect(self, _c, _u, _f, reason_code, _p) -> None:
        self.connected.clear()
        if not self._warned_down:
            log.warning("broker %s:%s unreachable (%s); events wait in the outbox", self._host, self._port, reason_code)
            self._warned_down = True

    def _on_connect_fail(self, _c, _u) -> None:
        if not self._warned_down:
            log.warning("broker %s:%s unreachable; events wait in the outbox", self._host, self._port)
            self._warned_down = True

    def _on_message(self, _c, _u, message: mqtt.MQTTMessage) -> None:
        try:
            ids = parse_ack(message.payload)
        except ProtocolError as exc:
            log.warning("ignored a malformed ack: %s", exc)
            return
        removed = self._outbox.ack(ids)
        log.debug("server acked %d event(s), %d removed from the outbox", len(ids), removed)

    def flush(self, resend_after_s: float) -> int:
        """Publish what is due, oldest first; only while connected, so paho never queues a stale copy."""
        if not self.connected.is_set():
            return 0
        due = self._outbox.due(resend_after_s)
        topic = events_topic(self._site, self._device)
        sent = [self._client.publish(topic, item.payload, qos=1) for item in due]
        self._outbox.mark_sent([item.seq for item in due])
        if sent:
            crash_point("after_publish", lambda: [info.wait_for_publish(5) for info in sent])
        return len(due)

    def heartbeat(self, payload: bytes) -> None:
        if self.connected.is_set():
            self._client.publish(heartbeat_topic(self._site, self._device), payload, qos=0)
