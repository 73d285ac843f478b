"""paho's PUBLISH decode with shared property tables reads every packet exactly as paho's own does."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.client import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties

from server.paho_speedups import SharedTableProperties, install

V5 = MQTTProtocolVersion.MQTTv5


def publish_packet(topic: bytes, mid: int, properties: Properties | None, payload: bytes) -> bytes:
    packed = properties.pack() if properties is not None else b"\x00"
    return struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid) + packed + payload


def decoded(packet: bytes, properties_class: type) -> tuple:
    saved = _packet.Properties
    _packet.Properties = properties_class
    try:
        result = _packet.decode_publish(0x32, packet, V5)
    except Exception as exc:  # paho refuses some values (a NUL in a string): both must refuse alike
        return (type(exc).__name__, str(exc))
    finally:
        _packet.Properties = saved
    assert type(result.properties) is properties_class
    return (result.topic, result.mid, result.qos, result.payload, result.properties.json(), str(result.properties))


PROPERTIES = st.fixed_dictionaries(
    {},
    optional={
        "PayloadFormatIndicator": st.integers(0, 1),
        "MessageExpiryInterval": st.integers(0, 2**32 - 1),
        "ContentType": st.text(max_size=20),
        "ResponseTopic": st.text(min_size=1, max_size=20),
        "CorrelationData": st.binary(max_size=20),
        "TopicAlias": st.integers(1, 65535),
        "UserProperty": st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), min_size=1, max_size=3),
        "SubscriptionIdentifier": st.lists(st.integers(1, 268435455), min_size=1, max_size=2),
    },
)


@given(PROPERTIES, st.binary(max_size=200), st.integers(1, 65535))
def test_decoding_matches_paho_for_any_publish_properties(values, payload, mid):
    properties = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(properties, name, value)
    packet = publish_packet(b"guardpost/v1/site-a/gate-1/events", mid, properties, payload)
    assert decoded(packet, SharedTableProperties) == decoded(packet, Properties)


def test_the_shared_tables_class_behaves_like_paho_and_shares_nothing_mutable_per_message():
    one, two = SharedTableProperties(PacketTypes.PUBLISH), SharedTableProperties(PacketTypes.PUBLISH)
    one.ContentType = "application/json"
    one.UserProperty = ("a", "1")
    one.UserProperty = ("b", "2")  # paho appends repeated user properties
    assert one.json() == {"ContentType": "application/json", "UserProperty": [("a", "1"), ("b", "2")]}
    assert two.isEmpty() and not one.isEmpty()
    assert SharedTableProperties(PacketTypes.PUBLISH).unpack(one.pack())[0].json() == one.json()
    one.clear()
    assert one.isEmpty()
    with pytest.raises(MQTTException):
        one.NotAProperty = 1
    with pytest.raises(MQTTException):
        one.ReceiveMaximum = 10  # a CONNECT property, not a PUBLISH one


def test_install_makes_paho_use_it_and_is_idempotent():
    assert install() and install()
    assert _packet.Properties is SharedTableProperties
    packet = publish_packet(b"t", 7, None, b"x")
    assert type(_packet.decode_publish(0x32, packet, V5).properties) is SharedTableProperties
