"""A paho client that reads the broker in 64 KiB chunks instead of one recv() per packet field.

paho 2.x reads every packet with a ``select`` and then separate ``recv`` calls for its first byte, each
byte of its length and its body: five system calls and their Python wrappers for every message, on the
thread that reads the broker. ``BufferedReadClient`` serves those reads from one large ``recv`` (a few
hundred messages at a time under load) and parses every whole packet it holds before it waits again.

A whole packet in the buffer is parsed in one step. A QoS 0 or 1 PUBLISH without MQTT 5 properties
(what brokers send a subscriber that asks for no topic aliases) is decoded here, into a message without
paho's unused delivery-tracking object and with ``properties`` None, and handed to paho's own callback
dispatch; every other packet (properties, QoS 2, acks, malformed ones) goes through paho's decoder and
handlers. The buffer belongs to one socket, so a reconnect never sees the old connection's bytes. On a
paho whose reading does not look as expected the class is plain paho (``buffered`` False).
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

READ_SIZE = 65536
# Packets parsed from the buffer before the loop goes back to select(): its writes (the PUBACKs that
# let the broker send more) and keep-alives must not wait for a long backlog to be read.
PACKETS_PER_PASS = 500
_HOOKS = ("_sock_recv", "_packet_read", "_packet_handle", "_handle_on_message", "_send_puback", "_loop", "loop_read")
_PUBLISH_QOS_1 = mqtt.PUBLISH | 0x02


def _paho_reads_as_expected() -> bool:
    return all(callable(getattr(mqtt.Client, hook, None)) for hook in _HOOKS) and hasattr(mqtt, "time_func")


class ReceivedMessage(mqtt.MQTTMessage):
    """paho's MQTTMessage without the MQTTMessageInfo (and its Condition) a received message never uses."""

    __slots__ = ()

    def __init__(self, mid: int, topic: bytes, qos: int, retain: bool, dup: bool, payload: bytes):
        self.timestamp = mqtt.time_func()
        self.state = mqtt.mqtt_ms_invalid
        self.mid = mid
        self._topic = topic
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.payload = payload
        self.properties = None

    @property
    def info(self) -> mqtt.MQTTMessageInfo:
        return mqtt.MQTTMessageInfo(self.mid)


class BufferedReadClient(mqtt.Client):
    """paho's Client; its reads come from a per-connection buffer filled by large recv() calls."""

    buffered = _paho_reads_as_expected()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffered = self.buffered and all(hasattr(self, a) for a in ("_in_packet", "_msgtime_mutex", "_manual_ack"))
        self._read_sock: object | None = None
        self._read_buf = b""
        self._read_pos = 0

    def _held(self) -> int:
        """Bytes read from the current connection that paho has not consumed yet."""
        if self._read_sock is not self._sock:
            return 0
        return len(self._read_buf) - self._read_pos

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self.buffered:
            return super()._sock_recv(bufsize)
        if self._read_sock is not self._sock:  # a new connection: the old one's bytes mean nothing
            self._read_sock, self._read_buf, self._read_pos = self._sock, b"", 0
        if self._read_pos >= len(self._read_buf):
            data = super()._sock_recv(max(bufsize, READ_SIZE))  # raises BlockingIOError when nothing came
            with self._msgtime_mutex:  # what paho's keep-alive goes by
                self._last_bytes_received = mqtt.time_func()
            if len(data) <= bufsize:
                self._read_buf, self._read_pos = b"", 0
                return data  # also b"" for a closed connection, as paho expects
            self._read_buf, self._read_pos = data, 0
        start = self._read_pos
        self._read_pos = min(start + bufsize, len(self._read_buf))
        return self._read_buf[start : self._read_pos]

    def _packet_read(self) -> mqtt.MQTTErrorCode:
        if not self.buffered or self._in_packet["command"] or not self._held():
            return super()._packet_read()  # a packet begun earlier, or nothing held: paho reads it
        buf, pos = self._read_buf, self._read_pos
        end = len(buf)
        length, mult, at = 0, 1, pos + 1
        while True:  # the remaining length: 1 to 4 bytes, 7 bits each
            if at >= end or at - pos > 4:
                return super()._packet_read()  # not all here (or malformed): paho's way says what it is
            byte = buf[at]
            length += (byte & 127) * mult
            mult *= 128
            at += 1
            if not byte & 128:
                break
        if at + length > end:
            return super()._packet_read()
        command = buf[pos]
        self._read_pos = at + length
        if command & 0xF6 == mqtt.PUBLISH or command & 0xF6 == _PUBLISH_QOS_1:
            rc = self._publish_without_properties(command, buf, at, at + length)
            if rc is not None:
                return rc
        self._in_packet = {
            "command": command,
            "have_remaining": 1,
            "remaining_count": list(buf[pos + 1 : at]),
            "remaining_mult": mult,
            "remaining_length": length,
            "packet": buf[at : at + length],
            "to_process": 0,
            "pos": 0,
        }
        try:
            return self._packet_handle()
        except mqtt.MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = {
                "command": 0,
                "have_remaining": 0,
                "remaining_count": [],
                "remaining_mult": 1,
                "remaining_length": 0,
                "packet": bytearray(b""),
                "to_process": 0,
                "pos": 0,
            }

    def _publish_without_properties(self, command: int, buf: bytes, at: int, end: int) -> mqtt.MQTTErrorCode | None:
        """paho's _handle_publish for QoS 0/1; None when the packet needs paho's decoder (properties, bad sizes)."""
        qos = (command & 0x06) >> 1
        topic_end = at + 2 + int.from_bytes(buf[at : at + 2], "big")
        body = topic_end + (2 if qos else 0)
        if self._protocol == mqtt.MQTTv5:
            if body >= end or buf[body] != 0:
                return None
            body += 1
        elif topic_end == at + 2:
            return None  # MQTT 3 forbids an empty topic: paho's decoder refuses it
        if body > end:
            return None
        mid = int.from_bytes(buf[topic_end : topic_end + 2], "big") if qos else 0
        message = ReceivedMessage(
            mid, buf[at + 2 : topic_end], qos, bool(command & 0x01), bool(command & 0x08), buf[body:end]
        )
        self._handle_on_message(message)
        if qos and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        if not self.buffered:
            return super().loop_read(max_packets)
        if self._sock is None:
            return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
        for count in range(PACKETS_PER_PASS):
            # One recv() when called (select said readable); after that only what the buffer holds.
            if count and not self._held():
                break
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN or self._sock is None:
                break
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _loop(self, timeout: float = 1.0) -> mqtt.MQTTErrorCode:
        if self.buffered and self._held():
            # select() cannot see bytes already read: parse them first, then do not wait if some remain.
            rc = self.loop_read()
            if rc or self._sock is None:
                return rc
            if self._held():
                timeout = 0.0
        return super()._loop(timeout)
