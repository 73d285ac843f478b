"""Event payloads on ingest's hot path: orjson and a plain-dict check for the usual form, the reference for the rest.

``read_event`` and ``signature_matches`` give exactly the verdicts of ``parse_event`` and ``verify_event``
(stdlib json, the pydantic model, canonical JSON from stdlib json), about 2x faster:

- orjson parses; where it refuses (NaN, lone surrogates, numbers beyond 64 bits...) stdlib json decides.
- The plain-dict check accepts only values the model accepts unchanged (exact JSON types, finite numbers
  that orjson and stdlib json read alike) and returns None for anything else, which goes to the model: a
  payload the check is unsure of gets the model's verdict and error.
- For a payload the check vouched for, the signature is first checked over orjson's canonical form. If
  that matches, the canonical bytes the terminal signed are orjson's, which parse back to this very dict,
  so stdlib json's canonical form matches too. If not (a float orjson writes differently, or a bad
  signature), stdlib json's canonical form decides.
"""

from __future__ import annotations

import hmac
import math
import re
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from protocol.events import EVENT_SCHEMA, MAX_PAYLOAD_BYTES, Event, ProtocolError, load_json, validate_event
from protocol.signing import verify

# Anchored by fullmatch: unlike "$", it does not let a trailing newline through.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_BOOT_ID = re.compile(r"[0-9a-f-]{8,40}")
# RFC 3339 with an offset, as terminals write it; "[0-9]" because "\d" would take any Unicode digit.
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})")
_REQUIRED = frozenset(
    (
        "schema",
        "event_id",
        "device_id",
        "site_id",
        "seq",
        "captured_at",
        "clock_synced",
        "type",
        "guard_id",
        "method",
        "match",
        "evidence_sha256",
        "sig",
    )
)
_ALLOWED = _REQUIRED | {"monotonic_s", "boot_id", "candidate_guard_id", "card"}
_MATCH_REQUIRED = frozenset(("distance", "frames", "liveness"))
_MATCH_ALLOWED = _MATCH_REQUIRED | {"margin"}
_TYPES = frozenset(("check_in", "check_out", "patrol", "denied"))
_METHODS = frozenset(("face", "card", "face+card"))
_LIVENESS = frozenset(("pass", "fail", "not_checked"))
# Numbers up to here are exact as floats, and orjson reads them as stdlib json does (it reads integers
# beyond 64 bits as floats); larger ones go to the reference path.
_EXACT_FLOAT = 2.0**53


class EventFacts(NamedTuple):
    """What ingest stores and judges of a valid event; ``event_id`` in canonical lower-case form."""

    event_id: str
    device_id: str
    site_id: str
    seq: int
    captured_at: datetime
    clock_synced: bool
    monotonic_s: float | None
    boot_id: str | None
    type: str
    method: str
    guard_id: str | None
    candidate_guard_id: str | None
    distance: float | None
    margin: float | None
    liveness: str | None


class ReadEvent(NamedTuple):
    """``raw`` is the dict the signature covers; ``plain`` says the plain-dict check vouched for all of it."""

    facts: EventFacts
    raw: dict[str, Any]
    plain: bool


def read_event(payload: bytes) -> ReadEvent:
    """Like ``parse_event``: the same verdicts, the same errors (ProtocolError)."""
    if len(payload) <= MAX_PAYLOAD_BYTES:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(data) is dict and data.get("schema") == EVENT_SCHEMA:
                facts = plain_facts(data)
                if facts is not None:
                    return ReadEvent(facts, data, True)
    # The reference path, from the bytes: what orjson read may differ (integers beyond 64 bits).
    data = load_json(payload)
    return ReadEvent(facts_of(validate_event(data)), data, False)


def signature_matches(event: ReadEvent, secret: str) -> bool:
    """Like ``verify_event(event.raw, secret)``."""
    if event.plain:
        unsigned = dict(event.raw)
        given = unsigned.pop("sig")
        try:
            signed = orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            signed = None  # e.g. a lone surrogate in a card number: stdlib json's form decides
        if signed is not None:
            expected = hmac.digest(secret.encode("utf-8"), signed, "sha256").hex()  # one C call: OpenSSL's
            if hmac.compare_digest(given, expected):
                return True
    return verify(event.raw, secret)


def facts_of(event: Event) -> EventFacts:
    match = event.match
    return EventFacts(
        str(event.event_id),
        event.device_id,
        event.site_id,
        event.seq,
        event.captured_at,
        event.clock_synced,
        event.monotonic_s,
        event.boot_id,
        event.type,
        event.method,
        event.guard_id,
        event.candidate_guard_id,
        match.distance if match else None,
        match.margin if match else None,
        match.liveness if match else None,
    )


def plain_facts(data: dict[str, Any]) -> EventFacts | None:
    """The facts of an event in the usual form, or None when the model must decide (valid or not)."""
    keys = data.keys()
    if not (_REQUIRED <= keys <= _ALLOWED) or data["schema"] != EVENT_SCHEMA:
        return None
    event_id, device_id, site_id = data["event_id"], data["device_id"], data["site_id"]
    seq, captured, synced = data["seq"], data["captured_at"], data["clock_synced"]
    kind, method, guard_id, match = data["type"], data["method"], data["guard_id"], data["match"]
    evidence, sig = data["evidence_sha256"], data["sig"]
    monotonic, boot_id = data.get("monotonic_s"), data.get("boot_id")
    candidate, card = data.get("candidate_guard_id"), data.get("card")
    if not (
        type(event_id) is str
        and _UUID.fullmatch(event_id)
        and _is_id(device_id)
        and _is_id(site_id)
        and type(seq) is int
        and 1 <= seq <= 2**62
        and type(captured) is str
        and _TIME.fullmatch(captured)
        and (synced is True or synced is False)
        and type(kind) is str
        and kind in _TYPES
        and type(method) is str
        and method in _METHODS
        and (guard_id is None or _is_id(guard_id))
        and (candidate is None or _is_id(candidate))
        and (evidence is None or (type(evidence) is str and _HEX64.fullmatch(evidence)))
        and type(sig) is str
        and _HEX64.fullmatch(sig)
        and (boot_id is None or (type(boot_id) is str and _BOOT_ID.fullmatch(boot_id)))
        and (monotonic is None or _number(monotonic, 0.0, math.inf))
        and (card is None or _card(card))
        # The model's cross-field rules.
        and (match is None) == (method == "card")
        and (guard_id is not None or kind == "denied")
    ):
        return None
    distance = margin = liveness = None
    if match is not None:
        if type(match) is not dict or not (_MATCH_REQUIRED <= match.keys() <= _MATCH_ALLOWED):
            return None
        distance, margin, frames, liveness = match["distance"], match.get("margin"), match["frames"], match["liveness"]
        if not (
            (distance is None or _number(distance, 0.0, 4.0))
            and (margin is None or _number(margin, 0.0, 4.0))
            and type(frames) is int
            and 1 <= frames <= 1000
            and type(liveness) is str
            and liveness in _LIVENESS
        ):
            return None
    try:
        moment = datetime.fromisoformat(captured)
    except ValueError:
        return None  # a day or hour out of range: the model words the error
    return EventFacts(
        event_id.lower(),  # what str(uuid.UUID(event_id)) gives
        device_id,
        site_id,
        seq,
        moment,
        synced,
        None if monotonic is None else float(monotonic),
        boot_id,
        kind,
        method,
        guard_id,
        candidate,
        None if distance is None else float(distance),
        None if margin is None else float(margin),
        liveness,
    )


def _is_id(value: Any) -> bool:
    return type(value) is str and _ID.fullmatch(value) is not None


def _number(value: Any, low: float, high: float) -> bool:
    """A JSON number within [low, high] that converts to float exactly; bools, NaN and inf go to the model."""
    kind = type(value)
    if kind is not float and kind is not int:
        return False
    return low <= value <= high and -_EXACT_FLOAT <= value <= _EXACT_FLOAT  # NaN fails, inf is out of range


def _card(card: Any) -> bool:
    if type(card) is not dict or card.keys() != {"number_masked"}:
        return False
    number = card["number_masked"]
    return type(number) is str and 1 <= len(number) <= 64


__all__ = ["EventFacts", "ProtocolError", "ReadEvent", "facts_of", "plain_facts", "read_event", "signature_matches"]
