"""BufferedReadClient hands on exactly what stock paho does for the same bytes, however the socket splits them."""

from __future__ import annotations

import socket
import struct

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.paho_buffered_read import READ_SIZE, BufferedReadClient


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def publish(
    topic: bytes, payload: bytes, *, qos=1, mid=1, retain=False, dup=False, props: bytes | None = None
) -> bytes:
    """A PUBLISH as a broker sends it; ``props`` given: MQTT 5 (b"" for none)."""
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    if props is not None:
        body += varint(len(props)) + props
    header = mqtt.PUBLISH | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    return bytes([header]) + varint(len(body) + len(payload)) + body + payload


PINGRESP = bytes([mqtt.PINGRESP, 0])
USER_PROPERTY = b"\x26" + struct.pack("!H", 1) + b"k" + struct.pack("!H", 1) + b"v"
EXPIRY = b"\x02" + struct.pack("!I", 60)


class Wire:
    """A client reading one end of a real socket pair; the test writes the broker's side."""

    def __init__(self, cls: type[mqtt.Client], v5: bool, manual_ack: bool = True):
        protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        self.client = cls(mqtt.CallbackAPIVersion.VERSION2, client_id="t", protocol=protocol, manual_ack=manual_ack)
        self.received: list[tuple] = []
        self.client.on_message = lambda _c, _u, m: self.received.append(
            (_topic(m), m.payload, m.qos, m.retain, m.dup, m.mid, _props(m))
        )
        self.sockets: list[socket.socket] = []
        self.attach()

    def attach(self) -> None:
        self.broker, mine = socket.socketpair()
        self.sockets += [self.broker, mine]
        mine.setblocking(False)
        self.client._sock = mine

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *_exc) -> None:
        for sock in self.sockets:
            sock.close()

    def feed(self, data: bytes) -> mqtt.MQTTErrorCode:
        """Write ``data`` and run the client's loop until it has nothing left to read; the first error, if any."""
        self.broker.sendall(data)
        for _ in range(len(data) + 3):
            rc = self.client.loop(timeout=0)
            if rc:
                return rc
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def sent(self) -> bytes:
        self.broker.setblocking(False)
        try:
            return self.broker.recv(65536)
        except BlockingIOError:
            return b""


def _topic(message: mqtt.MQTTMessage) -> str | bytes:
    try:
        return message.topic
    except UnicodeDecodeError:  # paho still delivers it; reading the topic is what fails
        return message._topic


def _props(message: mqtt.MQTTMessage) -> tuple:
    props = message.properties
    if props is None:
        return ()
    return tuple(sorted((k, repr(v)) for k, v in props.json().items()))


def run(cls, v5: bool, chunks: list[bytes], manual_ack: bool = True) -> tuple[list, list, bytes]:
    with Wire(cls, v5, manual_ack) as wire:
        codes = [wire.feed(chunk) for chunk in chunks]
        return wire.received, codes, wire.sent()


def same_as_paho(v5: bool, chunks: list[bytes], manual_ack: bool = True) -> list:
    stock = run(mqtt.Client, v5, chunks, manual_ack)
    buffered = run(BufferedReadClient, v5, chunks, manual_ack)
    # Where stock paho hands on an MQTT 5 message with an empty Properties, the buffered client gives None.
    assert [m[:6] for m in buffered[0]] == [m[:6] for m in stock[0]]
    assert [m[6] for m in buffered[0]] == [m[6] for m in stock[0]]
    assert buffered[1:] == stock[1:]
    return buffered[0]


def test_the_class_is_buffered_on_this_paho():
    assert BufferedReadClient.buffered
    with Wire(BufferedReadClient, v5=True) as wire:
        assert wire.client.buffered


@pytest.mark.parametrize("v5", [True, False])
def test_many_messages_in_one_read(v5):
    props = b"" if v5 else None
    # More than one pass of the loop parses (PACKETS_PER_PASS), all from a single recv().
    stream = b"".join(publish(f"a/{i}".encode(), b"x" * (i % 40), mid=i + 1, props=props) for i in range(1200))
    assert len(stream) < READ_SIZE
    got = same_as_paho(v5, [stream + PINGRESP])
    assert [m[0] for m in got] == [f"a/{i}" for i in range(1200)]


def test_a_message_larger_than_a_read_arrives_whole():
    big = bytes(range(256)) * (3 * READ_SIZE // 256)
    got = same_as_paho(True, [publish(b"big", big, props=b""), publish(b"small", b"s", mid=2, props=b"")])
    assert got[0][1] == big and got[1][1] == b"s"


def test_properties_take_pahos_own_decoder():
    got = same_as_paho(True, [publish(b"p", b"1", props=USER_PROPERTY), publish(b"q", b"2", mid=2, props=EXPIRY)])
    assert got[0][6] and got[1][6]  # paho decoded them


def test_automatic_acks_are_sent_as_paho_sends_them():
    stream = publish(b"a", b"1", mid=7, props=b"") + publish(b"b", b"2", qos=0, props=b"")
    same_as_paho(True, [stream], manual_ack=False)
    assert run(BufferedReadClient, True, [stream], manual_ack=False)[2] == bytes([mqtt.PUBACK, 2, 0, 7])


@pytest.mark.parametrize(
    "bad",
    [
        bytes([mqtt.PUBLISH | 2, 0x80, 0x80, 0x80, 0x80, 0x01]),  # a remaining length of 5 bytes
        publish(b"", b"no topic", props=None),  # MQTT 3 forbids an empty topic
        bytes([mqtt.PUBLISH | 2, 3, 0, 9, 0x61]),  # a topic longer than the packet
    ],
)
def test_malformed_packets_end_the_same_way(bad):
    same_as_paho(False, [publish(b"ok", b"1"), bad])


def test_a_new_connection_never_reads_the_old_ones_bytes():
    with Wire(BufferedReadClient, v5=False) as wire:
        whole = publish(b"one", b"1")
        wire.feed(whole + publish(b"two", b"2", mid=2)[:5])  # the second cut short by the connection's end
        # What paho's reconnect does: a new socket, the half-read packet forgotten.
        wire.attach()
        wire.client._in_packet = {**wire.client._in_packet, "command": 0, "have_remaining": 0, "remaining_count": []}
        wire.client._in_packet.update(remaining_mult=1, remaining_length=0, packet=bytearray(), to_process=0, pos=0)
        wire.feed(publish(b"three", b"3", mid=3))
        assert [m[0] for m in wire.received] == ["one", "three"]


def test_keep_alive_sees_the_bytes_that_arrive():
    with Wire(BufferedReadClient, v5=True) as wire:
        wire.client._last_bytes_received = 0.0
        wire.feed(publish(b"a", b"1", props=b""))
        assert wire.client._last_bytes_received > 0.0


PACKETS = st.lists(
    st.tuples(
        st.binary(min_size=1, max_size=20).filter(lambda t: b"\x00" not in t and b"+" not in t and b"#" not in t),
        st.binary(max_size=300),
        st.sampled_from([0, 1]),
        st.booleans(),
        st.booleans(),
        st.sampled_from([b"", b"", USER_PROPERTY, EXPIRY]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(packets=PACKETS, v5=st.booleans(), cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12))
def test_any_stream_cut_anywhere_gives_what_paho_gives(packets, v5, cuts):
    stream = b"".join(
        publish(topic, payload, qos=qos, mid=n + 1, retain=retain, dup=dup, props=props if v5 else None)
        + (PINGRESP if n % 5 == 4 else b"")
        for n, (topic, payload, qos, retain, dup, props) in enumerate(packets)
    )
    edges = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]
    got = same_as_paho(v5, chunks)
    assert len(got) == len(packets)
