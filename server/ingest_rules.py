"""Pure ingest rules: what one MQTT message is (event, status, heartbeat) or why it is refused."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from protocol.event_check import EventFacts, read_event, signature_matches
from protocol.events import Heartbeat, ProtocolError, parse_heartbeat, parse_status
from protocol.topics import TopicAddress, TopicError, parse_topic

EXCERPT_CHARS = 2000


@dataclass(frozen=True)
class TerminalInfo:
    """What the rules need to know about a registered terminal."""

    device_id: str
    site_id: str
    secret: str
    enabled: bool


@dataclass(frozen=True)
class Refused:
    reason: str
    detail: str
    device_id: str | None


@dataclass(frozen=True)
class StatusUpdate:
    """``online`` is None for a cleared retained status, which records nothing."""

    device_id: str | None
    site_id: str | None
    online: bool | None


@dataclass(frozen=True)
class HeartbeatUpdate:
    device_id: str
    site_id: str
    heartbeat: Heartbeat
    data: dict[str, Any]


class AcceptedEvent(NamedTuple):
    """A verified event; ``text`` is its payload as received (valid UTF-8 JSON), stored as is.

    A NamedTuple: one is built per event on ingest's hot path.
    """

    device_id: str
    site_id: str
    event: EventFacts
    text: str

    @property
    def event_id(self) -> str:
        return self.event.event_id  # the canonical (lower-case) form


Verdict = Refused | StatusUpdate | HeartbeatUpdate | AcceptedEvent


def clean_text(text: str, limit: int) -> str:
    """Cut to ``limit`` and replace NUL, which PostgreSQL text cannot hold and hostile payloads may contain."""
    return text[:limit].replace("\x00", "\ufffd")


def excerpt(payload: bytes) -> str:
    return clean_text(payload[:EXCERPT_CHARS].decode("utf-8", errors="replace"), EXCERPT_CHARS)


@lru_cache(maxsize=4096)
def _address(topic: str) -> TopicAddress:
    # Every message of a terminal comes on the same few topics; bad topics raise and are not cached.
    return parse_topic(topic)


def device_of(topic: str) -> str | None:
    """The device a topic names, or None when the topic is not a GuardPost topic."""
    try:
        return _address(topic).device_id
    except TopicError:
        return None


def check_message(topic: str, payload: bytes, terminal: TerminalInfo | None) -> Verdict:
    """Everything ingest decides about one message before it touches the database.

    ``terminal`` is the registration of the device the topic names (None when unknown).
    """
    try:
        address = _address(topic)
    except TopicError as exc:
        return Refused("wrong_topic", str(exc), None)
    device_id = address.device_id
    if address.kind == "status" and not payload:
        return StatusUpdate(None, None, None)  # someone cleared a retained status: nothing to record
    if terminal is None:
        return Refused("unknown_terminal", f"terminal {device_id} is not registered", device_id)
    if not terminal.enabled:
        return Refused("disabled_terminal", f"terminal {device_id} is disabled", device_id)
    if terminal.site_id != address.site_id:
        detail = f"terminal {device_id} belongs to site {terminal.site_id}, not {address.site_id}"
        return Refused("wrong_topic", detail, device_id)
    try:
        if address.kind == "events":
            return _event(terminal, topic, payload)
        if address.kind == "status":
            return StatusUpdate(device_id, terminal.site_id, parse_status(payload) == "online")
        if address.kind == "heartbeat":
            beat = parse_heartbeat(payload)
            return HeartbeatUpdate(device_id, terminal.site_id, beat, beat.model_dump(mode="json", by_alias=True))
    except ProtocolError as exc:
        return Refused(exc.reason, exc.detail, device_id)
    return Refused("wrong_topic", f"servers do not accept {address.kind} messages", device_id)


def _event(terminal: TerminalInfo, topic: str, payload: bytes) -> Verdict:
    read = read_event(payload)
    event = read.facts
    if event.device_id != terminal.device_id or event.site_id != terminal.site_id:
        detail = f"payload says {event.site_id}/{event.device_id} but was published on {topic}"
        return Refused("topic_mismatch", detail, terminal.device_id)
    if not signature_matches(read, terminal.secret):
        detail = f"signature does not match terminal {terminal.device_id}'s secret"
        return Refused("bad_signature", detail, terminal.device_id)
    return AcceptedEvent(terminal.device_id, terminal.site_id, event, payload.decode("utf-8"))
