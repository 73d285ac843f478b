"""A plain paho client for tests: publish raw payloads, collect what arrives."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt

from server.config import parse_mqtt_url


class TestClient:
    __test__ = False  # not a pytest test class

    def __init__(self, mqtt_url: str):
        host, port = parse_mqtt_url(mqtt_url).address
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set("guardpost-test")
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, _c, _u, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload))

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)[0]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def received(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
