"""A review decision's canonical form: the exact bytes an audit chain will hash."""

from __future__ import annotations

import json
from datetime import datetime

from server.models import Post, ReviewDecision
from server.review import canonical, canonical_fields
from server.web.board_data import _posts


def decision(**overrides) -> ReviewDecision:
    fields = {
        "id": 7,
        "finding_id": 3,
        "event_id": "0b9c1f6e-6a7e-4a55-9d3e-1b2c3d4e5f60",
        "site_id": "north",
        "device_id": "gate-n",
        "guard_id": "g-north",
        "decision": "confirmed",
        "reason": "监控确认：李娜 08:02 到岗",
        "decided_by": "supervisor",
        "decided_at": datetime(2026, 3, 2, 1, 30, 5, 250000),
    }
    return ReviewDecision(**(fields | overrides))


def test_canonical_form_is_sorted_compact_utf8_json_of_every_field():
    raw = canonical(decision())
    assert raw == (
        b'{"decided_at":"2026-03-02T01:30:05.250000Z","decided_by":"supervisor","decision":"confirmed",'
        b'"device_id":"gate-n","event_id":"0b9c1f6e-6a7e-4a55-9d3e-1b2c3d4e5f60","finding_id":3,"guard_id":"g-north",'
        b'"id":7,"reason":"' + "监控确认：李娜 08:02 到岗".encode() + b'","schema":"guardpost.review_decision.v1",'
        b'"site_id":"north"}'
    )
    assert json.loads(raw) == canonical_fields(decision())


def test_every_field_changes_the_bytes():
    base = canonical(decision())
    changed = {
        "id": 8,
        "finding_id": 4,
        "event_id": "x",
        "site_id": "south",
        "device_id": "gate-s",
        "guard_id": "g-south",
        "decision": "rejected",
        "reason": "other",
        "decided_by": "someone",
        "decided_at": datetime(2026, 3, 2, 1, 30, 6),
    }
    for name, value in changed.items():
        assert canonical(decision(**{name: value})) != base, name


def test_board_groups_guards_and_terminals_by_post_with_the_rest_last():
    posts = [Post(post_id="p1", site_id="s", name="Gate"), Post(post_id="p2", site_id="s", name="Roof")]
    guards = [
        {"guard_id": "a", "post_id": "p2"},
        {"guard_id": "b", "post_id": None},
        {"guard_id": "c", "post_id": "gone"},
    ]
    terminals = [{"device_id": "t1", "post_id": "p1"}]
    grouped = _posts(posts, guards, terminals)
    summary = [
        (g["post_id"], [x["guard_id"] for x in g["on_duty"]], [t["device_id"] for t in g["terminals"]]) for g in grouped
    ]
    assert summary == [
        ("p1", [], ["t1"]),
        ("p2", ["a"], []),
        (None, ["b", "c"], []),
    ]
    assert _posts(posts, [], []) == [
        {"post_id": "p1", "name": "Gate", "on_duty": [], "terminals": []},
        {"post_id": "p2", "name": "Roof", "on_duty": [], "terminals": []},
    ]
