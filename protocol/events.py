"""Event, ack, status and heartbeat payloads: build, sign and parse (schema guardpost.*.v1)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from protocol.signing import sign, verify
from protocol.topics import TopicError, check_id

EVENT_SCHEMA = "guardpost.event.v1"
ACK_SCHEMA = "guardpost.ack.v1"
STATUS_SCHEMA = "guardpost.status.v1"
HEARTBEAT_SCHEMA = "guardpost.heartbeat.v1"
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_ACK_IDS = 500

EventType = Literal["check_in", "check_out", "patrol", "denied"]
Method = Literal["face", "card", "face+card"]
Liveness = Literal["pass", "fail", "not_checked"]
Id = Annotated[str, Field(min_length=1, max_length=64)]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ProtocolError(ValueError):
    """A payload that breaks the wire contract; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    distance: float | None = Field(ge=0.0, le=4.0)  # null when the gallery is empty
    margin: float | None = Field(default=None, ge=0.0, le=4.0)
    frames: int = Field(ge=1, le=1000)
    liveness: Liveness


class Card(_Strict):
    number_masked: str = Field(min_length=1, max_length=64)


class Event(_Strict):
    schema_: Literal["guardpost.event.v1"] = Field(alias="schema")
    event_id: uuid.UUID
    device_id: Id
    site_id: Id
    seq: int = Field(ge=1, le=2**62)
    captured_at: AwareDatetime
    clock_synced: bool
    # Seconds since the terminal booted at capture: lets the server correct an unsynced clock.
    monotonic_s: float | None = Field(default=None, ge=0.0)
    boot_id: str | None = Field(default=None, pattern=r"^[0-9a-f-]{8,40}$")
    type: EventType
    guard_id: Id | None
    candidate_guard_id: Id | None = None
    method: Method
    match: Match | None
    card: Card | None = None
    evidence_sha256: Hex64 | None
    sig: Hex64

    def model_post_init(self, __context: Any) -> None:
        ids = [
            (self.device_id, "device_id"),
            (self.site_id, "site_id"),
            (self.guard_id, "guard_id"),
            (self.candidate_guard_id, "candidate_guard_id"),
        ]
        for value, what in ids:
            if value is None:
                continue
            try:
                check_id(value, what)
            except TopicError as exc:
                raise ValueError(str(exc)) from exc
        if self.method == "card" and self.match is not None:
            raise ValueError("a card-only event carries no face match")
        if self.method != "card" and self.match is None:
            raise ValueError(f"method {self.method!r} needs a face match")
        if self.type != "denied" and self.guard_id is None:
            raise ValueError(f"a {self.type} event must name the guard; unrecognised people are 'denied'")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{where}: {err.get('msg', 'invalid')}"


def load_json(payload: bytes | str) -> Any:
    """The JSON value of a payload within the size limit, or a ProtocolError (oversized, malformed_json)."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("oversized", f"payload is {len(raw)} bytes, limit is {MAX_PAYLOAD_BYTES}")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("malformed_json", str(exc)) from None


def parse_event(payload: bytes | str) -> tuple[Event, dict[str, Any]]:
    """Parse and validate an event payload; returns the model and the raw dict its signature covers."""
    data = load_json(payload)
    return validate_event(data), data


def validate_event(data: Any) -> Event:
    """The event a parsed JSON value holds, or a ProtocolError saying what is wrong with it."""
    if not isinstance(data, dict):
        raise ProtocolError("invalid_schema", "payload is not a JSON object")
    if data.get("schema") != EVENT_SCHEMA:
        raise ProtocolError("unsupported_schema", f"schema is {data.get('schema')!r}, expected {EVENT_SCHEMA!r}")
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError("invalid_schema", _first_error(exc)) from None


def verify_event(raw: dict[str, Any], secret: str) -> bool:
    return verify(raw, secret)


def format_time(moment: datetime) -> str:
    """RFC 3339 with offset, millisecond precision."""
    if moment.tzinfo is None:
        raise ValueError("timestamps on the wire must carry an offset")
    return moment.isoformat(timespec="milliseconds")


def build_event(
    *,
    secret: str,
    device_id: str,
    site_id: str,
    seq: int,
    type: str,
    method: str,
    guard_id: str | None,
    captured_at: datetime,
    clock_synced: bool,
    match: dict[str, Any] | None,
    evidence_sha256: str | None,
    card_number_masked: str | None = None,
    candidate_guard_id: str | None = None,
    monotonic_s: float | None = None,
    boot_id: str | None = None,
    event_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A signed event dict, validated against the schema before it leaves the caller."""
    payload: dict[str, Any] = {
        "schema": EVENT_SCHEMA,
        "event_id": str(event_id or uuid.uuid4()),
        "device_id": device_id,
        "site_id": site_id,
        "seq": seq,
        "captured_at": format_time(captured_at),
        "clock_synced": clock_synced,
        "type": type,
        "guard_id": guard_id,
        "method": method,
        "match": match,
        "evidence_sha256": evidence_sha256,
    }
    if monotonic_s is not None:
        payload["monotonic_s"] = round(monotonic_s, 3)
    if boot_id is not None:
        payload["boot_id"] = boot_id
    if candidate_guard_id is not None:
        payload["candidate_guard_id"] = candidate_guard_id
    if card_number_masked is not None:
        payload["card"] = {"number_masked": card_number_masked}
    payload["sig"] = sign(payload, secret)
    try:
        Event.model_validate(payload)
    except ValidationError as exc:
        raise ProtocolError("invalid_schema", _first_error(exc)) from None
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_ack(event_ids: list[str]) -> bytes:
    return encode({"schema": ACK_SCHEMA, "event_ids": list(event_ids)})


def parse_ack(payload: bytes) -> list[str]:
    data = load_json(payload)
    if not isinstance(data, dict) or data.get("schema") != ACK_SCHEMA:
        raise ProtocolError("unsupported_schema", f"ack schema must be {ACK_SCHEMA!r}")
    ids = data.get("event_ids")
    if not isinstance(ids, list) or len(ids) > MAX_ACK_IDS or not all(isinstance(i, str) for i in ids):
        raise ProtocolError("invalid_schema", f"event_ids must be a list of at most {MAX_ACK_IDS} strings")
    return ids


def build_status(state: Literal["online", "offline"]) -> bytes:
    return encode({"schema": STATUS_SCHEMA, "state": state})


def parse_status(payload: bytes) -> str:
    data = load_json(payload)
    if (
        not isinstance(data, dict)
        or data.get("schema") != STATUS_SCHEMA
        or data.get("state") not in ("online", "offline")
    ):
        raise ProtocolError("invalid_schema", "status must be {schema: guardpost.status.v1, state: online|offline}")
    return data["state"]


class Heartbeat(_Strict):
    schema_: Literal["guardpost.heartbeat.v1"] = Field(alias="schema")
    sent_at: AwareDatetime
    outbox_depth: int = Field(ge=0)
    clock_synced: bool
    cpu_temp_c: float | None = None
    disk_free_mb: float | None = Field(default=None, ge=0)
    version: str = Field(max_length=32)
    # With sent_at from a synced clock, these let the server re-date events captured before the sync.
    monotonic_s: float | None = Field(default=None, ge=0.0)
    boot_id: str | None = Field(default=None, pattern=r"^[0-9a-f-]{8,40}$")
    alarms: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=10)


def build_heartbeat(**fields: Any) -> bytes:
    sent_at = fields.pop("sent_at", None) or datetime.now(UTC)
    payload = {"schema": HEARTBEAT_SCHEMA, "sent_at": format_time(sent_at), **fields}
    Heartbeat.model_validate(payload)
    return encode(payload)


def parse_heartbeat(payload: bytes) -> Heartbeat:
    data = load_json(payload)
    try:
        return Heartbeat.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError("invalid_schema", _first_error(exc)) from None
