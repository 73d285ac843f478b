"""Ask a broker whether it speaks MQTT 5, whose Receive Maximum lets ingest choose its own in-flight window.

Over MQTT 3.1.1 the broker alone decides how many unacked messages it sends (Mosquitto: 20 by default),
which caps a batch at that many. The embedded amqtt broker speaks only 3.1.1 and never answers an MQTT 5
CONNECT, so the probe waits a bounded time and remembers the answer per broker address.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt

from protocol.mqtt_url import MqttUrl

log = logging.getLogger("guardpost.ingest")
PROBE_TIMEOUT_S = 2.0
UNSUPPORTED_PROTOCOL = 0x84  # MQTT 5 CONNACK reason code

_known: dict[tuple[str, int], bool] = {}
_lock = threading.Lock()


def speaks_mqtt5(
    broker: MqttUrl,
    username: str,
    timeout: float = PROBE_TIMEOUT_S,
    configure: Callable[[mqtt.Client], None] | None = None,
) -> bool:
    """True when the broker accepts an MQTT 5 connection; raises OSError when nothing listens there."""
    with _lock:
        if broker.address in _known:
            return _known[broker.address]
    answered = threading.Event()
    verdict = {"v5": False}

    def on_connect(_client, _userdata, _flags, reason_code, _props) -> None:
        verdict["v5"] = reason_code.value != UNSUPPORTED_PROTOCOL
        answered.set()

    # A throwaway client id with a clean start: the probe must not touch ingest's own session.
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{username}-probe-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(broker.username or username, broker.password)
    if configure is not None:
        configure(client)  # the credentials and TLS the real client uses
    client.on_connect = on_connect
    client.connect(broker.host, broker.port, keepalive=max(5, int(timeout) + 5))
    try:
        deadline = time.monotonic() + timeout
        while not answered.is_set() and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break  # the broker hung up on an MQTT 5 CONNECT
    finally:
        client.disconnect()  # without a loop thread this writes DISCONNECT and closes the socket at once
    if not verdict["v5"]:
        log.warning(
            "broker %s does not speak MQTT 5; ingest uses MQTT 3.1.1 and the broker's own in-flight window",
            broker.redacted(),
        )
    with _lock:
        _known[broker.address] = verdict["v5"]
    return verdict["v5"]
