"""A cheaper MQTT 5 PUBLISH decode for paho: its property tables built once, not for every message.

paho 2.x decodes each MQTT 5 PUBLISH into a fresh ``Properties``, whose constructor rebuilds two tables
of every property MQTT 5 defines (some 30 ``list.index`` calls) and whose ``unpack`` first "clears" by
trying all 27 names: about 10 us a message, three times the rest of the decode, on the thread that
reads the broker. ``SharedTableProperties`` is the same class with the (never modified) tables shared
and a direct ``clear``; ``install`` makes paho's decoder use it. Every other method is paho's own.

The change is process-wide: every paho client in the process decodes faster (in the ingest benchmark,
the bare subscriber it compares with too). ``install`` does nothing on a paho whose decoder does not
look as expected, so an upgrade can only lose the speed-up, not break decoding.
"""

from __future__ import annotations

from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_TEMPLATE = Properties(PacketTypes.PUBLISH)
_TABLES = ("types", "names", "properties")
_NAMES = tuple(name.replace(" ", "") for name in _TEMPLATE.names)


class SharedTableProperties(Properties):
    """paho's Properties with its lookup tables shared between instances (paho only reads them)."""

    def __init__(self, packetType: int):  # noqa: N803 (paho's parameter name)
        object.__setattr__(self, "packetType", packetType)
        for table in _TABLES:
            object.__setattr__(self, table, getattr(_TEMPLATE, table))

    def clear(self) -> None:
        for name in _NAMES:
            if name in self.__dict__:
                delattr(self, name)


def install() -> bool:
    """Make paho's PUBLISH decoder build SharedTableProperties; True when it does (idempotent)."""
    current = getattr(_packet, "Properties", None)
    if current is SharedTableProperties:
        return True
    if current is not Properties or not all(hasattr(_TEMPLATE, table) for table in _TABLES):
        return False
    _packet.Properties = SharedTableProperties
    return True
