"""PUBACK a batch of QoS 1 messages with one socket write instead of one write (and one wake-up) per message.

paho's ``Client.ack`` queues each PUBACK on its own: a wake-up byte and a Python round through its queue
from our thread, then one ``send`` per packet on its network thread; a few microseconds a message on both
of ingest's busy threads. The PUBACKs of a batch are the same 4-byte packets (MQTT 3.1.1, and MQTT 5's
short form for success without properties), in the order the messages arrived, queued as one write.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import paho.mqtt.client as mqtt

_PUBACK = struct.Struct("!BBH")  # packet type, remaining length 2, packet id


def ack_all(client: mqtt.Client, mids: Sequence[int]) -> None:
    """Acknowledge these QoS 1 message ids, in this order, as ``client.ack(mid, 1)`` for each would."""
    if not mids:
        return
    queue = getattr(client, "_packet_queue", None)
    if queue is None:  # a paho without the internal queue we rely on: one by one, as its API offers
        for mid in mids:
            client.ack(mid, 1)
        return
    packets = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
    # What Client.ack(mid, 1) does for each: _send_command_with_mid -> _packet_queue(PUBACK, packet, mid, 1).
    queue(mqtt.PUBACK, packets, mids[-1], 1)
