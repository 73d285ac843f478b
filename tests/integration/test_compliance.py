"""Compliance findings: unlicensed or expired guards, unposted guards, faces to review, silent terminals."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from server.compliance import event_findings, store, terminal_offline_findings
from server.db import make_engine, make_sessionmaker
from server.lookup_digests import ServerCipher
from server.models import Event, Finding, Terminal, utcnow
from server.registry import Certificate, add_device, add_guard

# Just after the guards are posted (postings start when they are added).
NOW = utcnow() + timedelta(minutes=30)


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    cipher = ServerCipher(Fernet.generate_key())
    with sessions() as s:
        add_device(s, "site-a", "gate-1")
        add_guard(
            s,
            "G-OK",
            "Valid",
            ["site-a"],
            cipher=cipher,
            certificate=Certificate("GD2026000001", date(2025, 1, 1), date(2027, 1, 1)),
        )
        add_guard(
            s,
            "G-OLD",
            "Expired",
            ["site-a"],
            cipher=cipher,
            certificate=Certificate("GD2020000002", date(2020, 1, 1), date(2025, 1, 1)),
        )
        add_guard(s, "G-NONE", "Unlicensed", ["site-a"])
        add_guard(
            s,
            "G-ELSE",
            "Posted elsewhere",
            ["site-b"],
            cipher=cipher,
            certificate=Certificate("GD2026000003", date(2025, 1, 1), date(2027, 1, 1)),
        )
        s.commit()
    yield sessions
    engine.dispose()


def event(guard_id, type="check_in", candidate=None):
    return Event(
        event_id=str(uuid.uuid4()),
        device_id="gate-1",
        site_id="site-a",
        seq=1,
        type=type,
        method="face",
        guard_id=guard_id,
        captured_at=NOW,
        clock_synced=True,
        distance=0.3,
        margin=0.1,
        liveness="pass",
        payload={"candidate_guard_id": candidate} if candidate else {},
    )


def kinds(found):
    return sorted((f.kind, f.guard_id) for f in found)


def test_licensed_posted_guard_raises_nothing(sessions):
    with sessions() as s:
        assert event_findings(s, [event("G-OK"), event("G-OK", "check_out")]) == []


def test_expired_missing_and_unposted_guards_are_violations(sessions):
    with sessions() as s:
        found = event_findings(s, [event("G-OLD"), event("G-NONE"), event("G-ELSE")])
    assert kinds(found) == [
        ("certificate_expired", "G-OLD"),
        ("certificate_missing", "G-NONE"),
        ("not_assigned", "G-ELSE"),
    ]
    assert all(f.severity == "violation" for f in found)


def test_denied_faces_go_to_review(sessions):
    with sessions() as s:
        found = event_findings(s, [event(None, "denied"), event(None, "denied", candidate="G-OK")])
    assert kinds(found) == [("borderline_match", "G-OK"), ("unknown_face", None)]


def test_the_same_finding_is_stored_once(sessions):
    with sessions() as s:
        assert store(s, event_findings(s, [event("G-OLD"), event("G-OLD")])) == 1
        assert store(s, event_findings(s, [event("G-OLD")])) == 0  # later the same day
        s.commit()
        assert len(s.scalars(select(Finding)).all()) == 1


def test_silent_terminal_raises_one_finding_per_outage_and_resolves(sessions):
    with sessions() as s:
        s.get(Terminal, "gate-1").last_seen_at = NOW - timedelta(minutes=10)
        assert terminal_offline_findings(s, NOW, timedelta(minutes=5)) == (1, 0)
        assert terminal_offline_findings(s, NOW + timedelta(minutes=1), timedelta(minutes=5)) == (0, 0)
        s.get(Terminal, "gate-1").last_seen_at = NOW + timedelta(minutes=2)
        assert terminal_offline_findings(s, NOW + timedelta(minutes=3), timedelta(minutes=5)) == (0, 1)
        s.commit()
        (finding,) = s.scalars(select(Finding)).all()
        assert finding.kind == "terminal_offline" and finding.resolved_at is not None
