"""Wire contract: topics, canonical signing, event parsing and its clear errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.events import (
    MAX_PAYLOAD_BYTES,
    ProtocolError,
    build_ack,
    build_heartbeat,
    build_status,
    encode,
    parse_ack,
    parse_event,
    parse_heartbeat,
    parse_status,
    verify_event,
)
from protocol.signing import canonical_json, sign
from protocol.topics import TopicError, acks_topic, events_topic, parse_topic, status_topic, subscription
from tests.support.events import signed_event

SECRET = "s3cret"


def test_topics_follow_the_contract():
    assert events_topic("site-a", "gate-1") == "guardpost/v1/site-a/gate-1/events"
    assert status_topic("site-a", "gate-1") == "guardpost/v1/site-a/gate-1/status"
    assert acks_topic("site-a", "gate-1") == "guardpost/v1/site-a/gate-1/acks"
    assert subscription("events") == "guardpost/v1/+/+/events"
    assert subscription("events", "ingest") == "$share/ingest/guardpost/v1/+/+/events"
    address = parse_topic("guardpost/v1/site-a/gate-1/events")
    assert (address.site_id, address.device_id, address.kind) == ("site-a", "gate-1", "events")


@pytest.mark.parametrize("bad", ["a/b", "guardpost/v2/s/d/events", "guardpost/v1/s/d/other", "guardpost/v1/+/d/events"])
def test_bad_topics_are_refused(bad):
    with pytest.raises(TopicError):
        parse_topic(bad)


def test_ids_with_wildcards_cannot_build_topics():
    with pytest.raises(TopicError):
        events_topic("site/a", "gate-1")
    with pytest.raises(TopicError):
        events_topic("site-a", "#")


def test_canonical_json_matches_the_documented_form():
    obj = {"b": 1, "a": "保安", "c": [1, 2]}
    assert canonical_json(obj) == '{"a":"保安","b":1,"c":[1,2]}'.encode()
    # sig is computed without the sig field
    assert sign({**obj, "sig": "x"}, SECRET) == sign(obj, SECRET)


def test_event_round_trip_and_signature():
    event = signed_event(SECRET, "site-a", "gate-1", seq=7)
    parsed, raw = parse_event(encode(event))
    assert parsed.seq == 7 and parsed.guard_id == "G-1"
    assert verify_event(raw, SECRET)
    assert not verify_event(raw, "other-secret")
    tampered = {**raw, "guard_id": "G-2"}
    assert not verify_event(tampered, SECRET)


def test_signature_survives_reserialisation_with_non_ascii():
    event = signed_event(SECRET, "site-a", "gate-1", card_number_masked="保安证****1234", method="face+card")
    wire = json.dumps(event, ensure_ascii=True, indent=2)  # a different but equivalent encoding
    _parsed, raw = parse_event(wire.encode())
    assert verify_event(raw, SECRET)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "invalid_schema"),
        (json.dumps({"schema": "guardpost.event.v2"}).encode(), "unsupported_schema"),
        (b"x" * (MAX_PAYLOAD_BYTES + 1), "oversized"),
    ],
)
def test_bad_payloads_raise_clear_errors(payload, reason):
    with pytest.raises(ProtocolError) as info:
        parse_event(payload)
    assert info.value.reason == reason


def test_schema_violations_name_the_field():
    event = signed_event(SECRET, "site-a", "gate-1")
    event["seq"] = 0
    with pytest.raises(ProtocolError, match="seq"):
        parse_event(encode(event))
    event = signed_event(SECRET, "site-a", "gate-1")
    event["captured_at"] = "2026-11-24T10:00:00"  # no offset
    with pytest.raises(ProtocolError, match="captured_at"):
        parse_event(encode(event))
    event = signed_event(SECRET, "site-a", "gate-1")
    event["extra"] = 1
    with pytest.raises(ProtocolError, match="extra"):
        parse_event(encode(event))


def test_rules_across_fields():
    with pytest.raises(ProtocolError, match="card-only"):
        signed_event(SECRET, "s", "d", method="card")
    with pytest.raises(ProtocolError, match="must name the guard"):
        signed_event(SECRET, "s", "d", guard_id=None)
    denied = signed_event(SECRET, "s", "d", type="denied", guard_id=None, candidate_guard_id="G-9")
    assert parse_event(encode(denied))[0].candidate_guard_id == "G-9"
    card = signed_event(SECRET, "s", "d", method="card", match=None, card_number_masked="****1234")
    assert parse_event(encode(card))[0].card.number_masked == "****1234"


def test_captured_at_keeps_its_offset():
    moment = datetime(2026, 11, 24, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    event = signed_event(SECRET, "s", "d", captured_at=moment)
    assert event["captured_at"] == "2026-11-24T08:00:00.000+08:00"
    assert parse_event(encode(event))[0].captured_at == moment


def test_ack_status_heartbeat_round_trip():
    assert parse_ack(build_ack(["a", "b"])) == ["a", "b"]
    assert parse_status(build_status("offline")) == "offline"
    beat = parse_heartbeat(
        build_heartbeat(outbox_depth=3, clock_synced=False, cpu_temp_c=51.2, disk_free_mb=900.0, version="0.1.0")
    )
    assert beat.outbox_depth == 3 and beat.clock_synced is False
    with pytest.raises(ProtocolError):
        parse_ack(b'{"schema": "guardpost.ack.v1", "event_ids": "x"}')


@settings(deadline=None)
@given(st.binary(max_size=2048))
def test_parser_never_raises_anything_but_protocol_error(data):
    try:
        parse_event(data)
    except ProtocolError:
        pass


HOSTILE = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(signed_event(SECRET, "s", "d"))), HOSTILE)
def test_parser_handles_hostile_field_values(key, value):
    event = signed_event(SECRET, "s", "d")
    original = event[key]
    event[key] = value
    try:
        _parsed, raw = parse_event(json.dumps(event).encode())
    except ProtocolError:
        return
    # Whatever still parses keeps a valid signature only if the value did not really change.
    assert verify_event(raw, SECRET) == (canonical_json(original) == canonical_json(value))
