"""The fast event reader gives exactly the verdicts of the reference (stdlib json, pydantic, stdlib canonical JSON)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import protocol.event_check as event_check
from protocol.event_check import facts_of, read_event, signature_matches
from protocol.events import ProtocolError, encode, parse_event, verify_event
from protocol.signing import sign
from tests.support.events import signed_event

SECRET = "terminal-secret"


def reference(payload: bytes) -> tuple[Any, ...]:
    try:
        event, raw = parse_event(payload)
    except ProtocolError as exc:
        return ("refused", exc.reason, exc.detail)
    return ("accepted", facts_of(event), verify_event(raw, SECRET))


def fast(payload: bytes) -> tuple[Any, ...]:
    try:
        read = read_event(payload)
    except ProtocolError as exc:
        return ("refused", exc.reason, exc.detail)
    return ("accepted", read.facts, signature_matches(read, SECRET))


def same_verdict(payload: bytes) -> tuple[Any, ...]:
    expected = reference(payload)
    got = fast(payload)
    assert got == expected
    if expected[0] == "accepted":  # equal datetimes may differ in tzinfo class; the offsets must agree too
        assert got[1].captured_at.utcoffset() == expected[1].captured_at.utcoffset()
    return got


# Values a hostile or buggy terminal might put anywhere: wrong types, edge numbers, odd strings.
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 1, 4, 5, 1000, 1001, 2**53, 2**53 + 1, 2**62, 2**62 + 1, -0.0, 4.0, 4.000001, 1000.0]),
    st.integers(min_value=2**63, max_value=2**70),  # orjson reads these as floats
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=4.5),
    st.floats(min_value=1e-9, max_value=1e-4),  # written "1e-05" by stdlib json, "0.00001" by orjson
    st.sampled_from(
        ["", " ", "G-1\n", "G 1", "g\u00e9", "\ud800", "\x00", "face", "card", "denied", "pass", "ab" * 32]
    ),
    st.sampled_from(["AB" * 32, "ab" * 31, "0b6f2c1e-9f57", "0b6f2c1e-9f57-4a39-9a0c-6f1f0c1e2d3a", "-" * 8]),
    st.sampled_from(
        ["2026-03-01T08:00:00+08:00", "2026-03-01T08:00:00Z", "2026-03-01T08:00:00", "2026-02-30T08:00:00Z"]
    ),
    st.sampled_from(["2026-03-01 08:00:00+08:00", "2026-03-01T24:00:00Z", "2026-03-01T08:00:60Z", "20260301T080000Z"]),
    st.sampled_from(["2026-03-01T08:00:00.1234567Z", "2026-03-01T08:00:00+23:59", "2026-03-01T08:00:00-00:00"]),
    st.sampled_from(["0001-01-01T00:00:00+00:00", "0000-01-01T00:00:00Z", "2026-03-01T08:00:00+24:00"]),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: "urn:uuid:" + str(u)),
    st.text(max_size=70),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["distance", "margin", "frames", "liveness", "x"]), st.integers(0, 5), max_size=4),
)

MATCHES = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "distance": st.one_of(st.none(), st.floats(0, 4), st.integers(0, 4)),
            "frames": st.integers(1, 1000),
            "liveness": st.sampled_from(["pass", "fail", "not_checked"]),
        },
        optional={"margin": st.one_of(st.none(), st.floats(0, 4), st.floats(1e-7, 1e-5))},
    ),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid events in every allowed shape, signed the way a terminal signs them."""
    ident = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
    method = draw(st.sampled_from(["face", "card", "face+card"]))
    kind = draw(st.sampled_from(["check_in", "check_out", "patrol", "denied"]))
    offset = timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60)))
    moment = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 10**8)))
    micro = draw(st.sampled_from([0, 1000, 123456]))
    captured = moment.astimezone(timezone(offset)).replace(microsecond=micro)
    event: dict[str, Any] = {
        "schema": "guardpost.event.v1",
        "event_id": str(draw(st.uuids())),
        "device_id": draw(ident),
        "site_id": draw(ident),
        "seq": draw(st.integers(1, 2**62)),
        "captured_at": captured.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))),
        "clock_synced": draw(st.booleans()),
        "type": kind,
        "guard_id": draw(st.one_of(st.none(), ident)) if kind == "denied" else draw(ident),
        "method": method,
        "match": None if method == "card" else draw(MATCHES.filter(lambda m: m is not None)),
        "evidence_sha256": draw(st.one_of(st.none(), st.just("ab" * 32))),
    }
    optional = {
        "monotonic_s": st.one_of(st.none(), st.floats(0, 1e7), st.integers(0, 10**9), st.floats(1e-9, 1e-4)),
        "boot_id": st.one_of(st.none(), st.uuids().map(str)),
        "candidate_guard_id": st.one_of(st.none(), ident),
        "card": st.one_of(st.none(), st.fixed_dictionaries({"number_masked": st.text(min_size=1, max_size=64)})),
    }
    for key, values in optional.items():
        if draw(st.booleans()):
            event[key] = draw(values)
    event["sig"] = sign(event, SECRET)
    return event


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with a field changed, removed or added, or its match changed; re-signed or not."""
    event = draw(events())
    how = draw(st.sampled_from(["replace", "remove", "add", "match", "none"]))
    keys = sorted(event)
    if how == "replace":
        event[draw(st.sampled_from(keys))] = draw(ODD)
    elif how == "remove":
        del event[draw(st.sampled_from(keys))]
    elif how == "add":
        event[draw(st.sampled_from(["extra", "schema_", "Seq", "match "]))] = draw(ODD)
    elif how == "match" and isinstance(event.get("match"), dict):
        event["match"][draw(st.sampled_from(["distance", "margin", "frames", "liveness", "extra"]))] = draw(ODD)
    if draw(st.booleans()):
        try:
            event["sig"] = sign({k: v for k, v in event.items() if k != "sig"}, SECRET)
        except UnicodeEncodeError:
            pass  # a lone surrogate cannot be signed (nor sent by a terminal)
    return event


def wire(event: dict[str, Any], ascii_only: bool) -> bytes:
    # Terminals write compact UTF-8; others may escape non-ASCII or write NaN: both parsers must agree.
    return json.dumps(event, ensure_ascii=ascii_only, separators=(",", ":")).encode("utf-8", "surrogatepass")


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.booleans())
def test_valid_events_get_the_same_verdict_and_facts(event, ascii_only):
    verdict = same_verdict(wire(event, ascii_only))
    assert verdict[0] == "accepted" and verdict[2] is True


@settings(deadline=None, max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_changed_events_get_the_same_verdict_reason_and_detail(event, ascii_only):
    same_verdict(wire(event, ascii_only))


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_get_the_same_verdict(data):
    same_verdict(data)


@pytest.mark.parametrize(
    "change",
    [
        # Numbers written in ways the two JSON parsers or serialisers treat differently.
        lambda text: text.replace('"seq":1,', '"seq":1.0,'),
        lambda text: text.replace('"seq":1,', '"seq":18446744073709551617,'),
        lambda text: text.replace('"frames":3', '"frames":3e0'),
        lambda text: text.replace('"distance":0.31', '"distance":NaN'),
        lambda text: text.replace('"distance":0.31', '"distance":1e400'),
        lambda text: text.replace('"distance":0.31', '"distance":31e-2'),
        lambda text: text.replace('"distance":0.31', '"distance":-0.0'),
        lambda text: text.replace('"monotonic_s":1000.0', '"monotonic_s":18446744073709551616'),
        lambda text: text.replace('"monotonic_s":1000.0', '"monotonic_s":1e-05'),
        # Duplicate keys (the last one wins in both), escapes, a lone surrogate, a byte-order mark.
        lambda text: text.replace('"seq":1,', '"seq":2,"seq":1,'),
        lambda text: text.replace('"guard_id":"G-1"', '"guard_id":"G\\u002d1"'),
        lambda text: text.replace('"guard_id":"G-1"', '"guard_id":"G-1\\ud800"'),
        lambda text: text.replace('"evidence_sha256"', '"card":{"number_masked":"\\ud800"},"evidence_sha256"'),
        lambda text: "\ufeff" + text,
        lambda text: text + "\n",
    ],
)
def test_written_forms_of_the_same_values_get_the_same_verdict(change):
    event = signed_event(SECRET, "site-a", "gate-1", monotonic_s=1000.0, boot_id=str(uuid.uuid4()))
    original = json.dumps(event, separators=(",", ":"))
    text = change(original)
    assert text != original
    same_verdict(text.encode("utf-8", "surrogatepass"))


def test_a_terminals_event_takes_the_fast_path(monkeypatch):
    """What the speed-up rests on: no pydantic model and no stdlib canonical JSON for the usual event."""
    payload = encode(signed_event(SECRET, "site-a", "gate-1", monotonic_s=1234.5, boot_id=str(uuid.uuid4())))

    def fail(*_args):
        raise AssertionError("the reference path was taken")

    monkeypatch.setattr(event_check, "validate_event", fail)
    monkeypatch.setattr(event_check, "verify", fail)
    read = read_event(payload)
    assert read.plain and signature_matches(read, SECRET)
    assert read.facts == facts_of(parse_event(payload)[0])


@example(1e-05)
@given(st.floats(min_value=1e-9, max_value=1e-4))
def test_a_float_orjson_writes_differently_still_verifies(value):
    event = signed_event(SECRET, "site-a", "gate-1", monotonic_s=1.0)
    event["monotonic_s"] = value
    event["sig"] = sign(event, SECRET)
    read = read_event(encode(event))
    assert read.plain and signature_matches(read, SECRET)
    assert not signature_matches(read, "another-secret")
