"""Batched PUBACKs on a real broker: the acked messages are settled, the others come back after a reconnect."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from server.broker_probe import speaks_mqtt5
from server.config import parse_mqtt_url
from server.mqtt_acks import ack_all
from tests.support.brokers import RestartableBroker, mosquitto_binary
from tests.support.mqtt_client import TestClient
from tests.support.services import wait_for


class Subscriber:
    """A manual-ack client with a persistent session, as ingest connects."""

    def __init__(self, mqtt_url: str, client_id: str, topic: str):
        broker = parse_mqtt_url(mqtt_url)
        self.received: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()
        v5 = speaks_mqtt5(broker, client_id)
        if v5:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=True
            )
        self.client.username_pw_set(client_id)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_args: subscribed.set()
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 300
            self.client.connect(*broker.address, clean_start=False, properties=props)
        else:
            self.client.connect(*broker.address)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(10), "no SUBACK"

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.received.append((message.mid, message.payload))

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [payload for _mid, payload in self.received]

    def close(self) -> None:
        self.client.disconnect()  # queued after the PUBACKs: they are written first
        self.client.loop_stop()


@pytest.fixture
def redelivering_broker(mqtt_url, tmp_path) -> Iterator[str]:
    """MQTT_URL's broker; without it a private Mosquitto: amqtt does not redeliver unacked messages on reconnect."""
    if os.environ.get("MQTT_URL"):
        yield mqtt_url
        return
    if mosquitto_binary() is None:
        pytest.skip("the embedded amqtt broker does not redeliver unacked messages and Mosquitto is not installed")
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.mark.parametrize("batched", [True, False])
def test_acked_messages_are_settled_and_the_rest_redelivered(redelivering_broker, batched):
    mqtt_url = redelivering_broker
    topic = f"guardpost-test/acks/{uuid.uuid4().hex[:8]}"
    client_id = f"test-acks-{uuid.uuid4().hex[:8]}"
    # Brokers stop at 20 unacked messages by default (Mosquitto's max_inflight_messages).
    payloads = [f"m{i}".encode() for i in range(15)]
    subscriber = Subscriber(mqtt_url, client_id, topic)
    publisher = TestClient(mqtt_url)
    try:
        for payload in payloads:
            publisher.publish(topic, payload)
        wait_for(lambda: len(subscriber.payloads()) == 15, 20, "15 messages")
        assert subscriber.payloads() == payloads
        mids = [mid for mid, _payload in subscriber.received[:10]]
        if batched:
            ack_all(subscriber.client, mids)
        else:  # the control: paho's own acks settle the same messages
            for mid in mids:
                subscriber.client.ack(mid, 1)
        subscriber.close()
        again = Subscriber(mqtt_url, client_id, topic)
        try:
            wait_for(lambda: len(again.payloads()) >= 5, 20, "the 5 unacked messages again")
            assert sorted(again.payloads()) == sorted(payloads[10:])
            ack_all(again.client, [mid for mid, _payload in again.received])
        finally:
            again.close()
    finally:
        publisher.close()
    # Nothing is left for the session: a third connection gets nothing.
    last = Subscriber(mqtt_url, client_id, topic)
    try:
        publisher = TestClient(mqtt_url)
        publisher.publish(topic, b"marker")
        publisher.close()
        wait_for(lambda: b"marker" in last.payloads(), 20, "the marker")
        assert last.payloads() == [b"marker"]
        ack_all(last.client, [mid for mid, _payload in last.received])
    finally:
        last.client.disconnect()
        last.client.loop_stop()
        _forget_session(mqtt_url, client_id)


def _forget_session(mqtt_url: str, client_id: str) -> None:
    """Leave no persistent session behind on a shared broker."""
    broker = parse_mqtt_url(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.username_pw_set(client_id)
    client.connect(*broker.address)
    client.loop_start()
    client.disconnect()
    client.loop_stop()
