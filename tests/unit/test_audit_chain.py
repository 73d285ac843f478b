"""The hash chain over plain data: hashing, linking, and verification that catches every kind of tampering."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.audit.chain import (
    GENESIS,
    LinkChecker,
    Sealable,
    check_anchor,
    check_delay,
    check_marker,
    check_record,
    check_unsealed,
    link,
    marker,
    month_anchor,
    record_hash,
)
from server.audit.records import (
    correction_facts,
    correction_month,
    event_facts,
    event_month,
    month_range,
    parse_month,
)

T0 = datetime(2026, 4, 3, 8, 0, 0, 123456)


def facts(i: int) -> dict:
    return {"event_id": f"ev-{i}", "guard_id": f"G-{i % 3}", "seq": i, "captured_at": f"2026-04-03T08:{i:02d}:00"}


def sealables(db: dict[int, dict]) -> list[Sealable]:
    return [Sealable("event", i, f"ev-{i}", "2026-04", "site-a", record_hash("event", f)) for i, f in db.items()]


def verify(entries, db: dict[int, dict]) -> list[str]:
    """What audit verify does per entry, over plain data: links first, then each record against its row."""
    checker, problems = LinkChecker(), []
    for entry in entries:
        problems += [p.category for p in checker.feed(entry)]
        problem = check_record(entry, db.get(entry.ref_id), f"event {entry.ref_key}")
        if problem is not None:
            problems.append(problem.category)
    return problems


@pytest.fixture
def sealed():
    db = {i: facts(i) for i in range(1, 9)}
    return db, link(None, sealables(db), T0)


def test_record_hash_is_canonical_and_covers_every_fact():
    a = {"x": 1, "y": "李娜", "z": None}
    assert record_hash("event", a) == record_hash("event", dict(reversed(list(a.items()))))
    assert record_hash("event", a) != record_hash("correction", a)
    for key in a:
        assert record_hash("event", a | {key: "changed"}) != record_hash("event", a)
    assert len(record_hash("event", a)) == 64


def test_link_numbers_from_one_and_chains_each_entry_to_the_one_before(sealed):
    _db, entries = sealed
    assert [e.seq for e in entries] == list(range(1, 9))
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))
    assert all(e.computed_hash() == e.entry_hash for e in entries)
    more = link(entries[-1], sealables({9: facts(9)}), T0 + timedelta(minutes=1))
    assert more[0].seq == 9 and more[0].prev_hash == entries[-1].entry_hash


def test_an_intact_chain_verifies(sealed):
    db, entries = sealed
    assert verify(entries, db) == []


def test_a_modified_record_is_reported_at_its_entry(sealed):
    db, entries = sealed
    db[4] = db[4] | {"guard_id": "G-999"}
    problems = [check_record(e, db[e.ref_id], "event") for e in entries]
    assert [p and p.category for p in problems] == [None] * 3 + ["modified"] + [None] * 4
    assert "chain entry 4" in problems[3].message and "changed after it was sealed" in problems[3].message


def test_a_deleted_record_is_reported(sealed):
    db, entries = sealed
    del db[6]
    assert verify(entries, db) == ["deleted"]


def test_a_removed_chain_entry_shows_as_a_gap(sealed):
    db, entries = sealed
    assert verify(entries[:2] + entries[3:], db) == ["missing"]


def test_an_inserted_entry_breaks_the_chain(sealed):
    db, entries = sealed
    db[99] = facts(99)
    forged = link(entries[2], sealables({99: db[99]}), T0)[0]  # claims seq 4, after entry 3
    problems = verify(entries[:3] + [forged] + entries[3:], db)
    assert problems and set(problems) <= {"altered", "broken_link"}


def test_reordered_entries_are_reported(sealed):
    db, entries = sealed
    swapped = [dataclasses.replace(e, seq=7 - e.seq) if e.seq in (3, 4) else e for e in entries]
    swapped.sort(key=lambda e: e.seq)
    assert verify(swapped, db) == ["broken_link", "altered"] * 2 + ["broken_link"]
    # the same records swapped between two entries' ids
    db[2], db[5] = db[5], db[2]
    assert verify(entries, db) == ["modified", "modified"]


def test_fixing_the_record_hash_in_the_chain_is_caught_by_the_entry_hash_then_by_the_next_link(sealed):
    db, entries = sealed
    db[4] = db[4] | {"guard_id": "G-999"}
    patched = dataclasses.replace(entries[3], record_hash=record_hash("event", db[4]))
    assert verify(entries[:3] + [patched] + entries[4:], db) == ["altered"]
    rehashed = dataclasses.replace(patched, entry_hash=patched.computed_hash())
    assert verify(entries[:3] + [rehashed] + entries[4:], db) == ["broken_link"]


def test_rewriting_the_whole_chain_is_caught_only_by_a_published_anchor(sealed):
    db, entries = sealed
    anchor = month_anchor("2026-04", entries[-1], {"event": 8})
    db[2] = db[2] | {"guard_id": "G-999"}
    rewritten = link(None, sealables(db), T0)
    assert verify(rewritten, db) == []  # consistent in itself
    by_hash = {e.entry_hash: e for e in rewritten}
    assert check_anchor(anchor.entry_hash, by_hash.get(anchor.entry_hash)).category == "anchor"
    assert check_anchor(anchor.entry_hash, {e.entry_hash: e for e in entries}[anchor.entry_hash]) is None


def test_a_stretch_starting_mid_chain_checks_links_from_its_first_entry(sealed):
    db, entries = sealed
    checker = LinkChecker(first_seq=5)
    assert [p for e in entries[4:] for p in checker.feed(e)] == [] and checker.checked == 4
    checker = LinkChecker(first_seq=5)
    assert [p.category for e in entries[5:] for p in checker.feed(e)] == ["missing"]


def test_the_anchor_line_names_month_entry_and_counts(sealed):
    _db, entries = sealed
    anchor = month_anchor("2026-04", entries[-1], {"event": 8, "correction": 2})
    assert anchor.line() == f"anchor 2026-04: {entries[-1].entry_hash} (chain entry 8; 2 correction, 8 event)"
    assert month_anchor("2026-04", None, {}) is None


def test_late_sealing_is_reported_unless_the_record_predates_the_chain(sealed):
    _db, entries = sealed
    entry = entries[4]  # ref_id 5, sealed at T0
    assert check_delay(entry, T0 - timedelta(minutes=5), timedelta(minutes=15), None, "event") is None
    late = check_delay(entry, T0 - timedelta(days=3), timedelta(minutes=15), None, "event ev-5")
    assert (
        late.category == "sealed_late" and "3 days later" in late.message and "inserted after the fact" in late.message
    )
    assert check_delay(entry, T0 - timedelta(days=3), timedelta(minutes=15), 5, "event") is None
    assert check_delay(entry, T0 - timedelta(days=3), timedelta(minutes=15), 4, "event") is not None


def test_an_unsealed_record_is_fine_while_young_and_reported_when_old():
    assert check_unsealed("event x", T0, T0 + timedelta(minutes=10), timedelta(minutes=15)) is None
    old = check_unsealed("event x", T0, T0 + timedelta(hours=5), timedelta(minutes=15))
    assert old.category == "unsealed" and old.message.startswith("not sealed: event x arrived 2026-04-03 08:00:00")


def test_start_markers_are_hashed_and_checked():
    [entry] = link(None, [marker("event", 41, "2026-04")], T0)
    assert (entry.kind, entry.ref_id, entry.ref_key, entry.is_marker) == ("start:event", 41, "event", True)
    assert check_marker(entry) is None
    assert check_marker(dataclasses.replace(entry, ref_id=10_000)).category == "altered"


EVENT_ROW = {
    "event_id": "0b6f2c1e-9f57-4a39-9a0c-6f1f0c1e2d3a",
    "device_id": "gate-1",
    "site_id": "site-a",
    "seq": 42,
    "type": "check_in",
    "method": "face",
    "guard_id": "G-1",
    "captured_at": datetime(2026, 4, 30, 17, 0, 0),
    "clock_synced": True,
    "boot_id": None,
    "monotonic_s": 81234.5,
    "received_at": datetime(2026, 4, 30, 17, 0, 1, 5),
    "distance": 0.38,
    "margin": 0.21,
    "liveness": "pass",
    "payload": {"sig": "5d41", "seq": 42},
    "corrected_at": datetime(2026, 4, 30, 17, 0, 0),
    "clock_status": "synced",
}


def test_event_facts_keep_what_the_terminal_signed_and_leave_out_what_clock_correction_derives():
    got = event_facts(EVENT_ROW)
    assert got["payload"]["sig"] == "5d41" and got["received_at"] == "2026-04-30T17:00:01.000005"
    assert "corrected_at" not in got and "clock_status" not in got
    relabelled = EVENT_ROW | {"corrected_at": datetime(2026, 4, 30, 16, 0), "clock_status": "corrected"}
    assert record_hash("event", event_facts(relabelled)) == record_hash("event", got)
    assert record_hash("event", event_facts(EVENT_ROW | {"guard_id": "G-2"})) != record_hash("event", got)


def test_an_event_belongs_to_the_month_of_its_local_capture_date():
    assert event_month(EVENT_ROW, ZoneInfo("UTC")) == "2026-04"
    assert event_month(EVENT_ROW, ZoneInfo("Asia/Shanghai")) == "2026-05"  # 01:00 on 1 May in Shanghai


def test_a_correction_belongs_to_the_month_of_the_duty_day_it_corrects():
    row = {
        "guard_id": "G-1",
        "site_id": "site-a",
        "shift_id": "day",
        "date": datetime(2026, 4, 30).date(),
        "field": "status",
        "old_value": "absent",
        "new_value": "present",
        "reason": "reader fault",
        "corrected_by": "li",
        "corrected_at": datetime(2026, 5, 2, 9, 0),
    }
    assert correction_month(row, ZoneInfo("UTC")) == "2026-04"
    assert correction_facts(row)["date"] == "2026-04-30" and correction_facts(row)["reason"] == "reader fault"


def test_months_parse_strictly_and_roll_over_the_year():
    assert month_range("2026-12") == (datetime(2026, 12, 1).date(), datetime(2027, 1, 1).date())
    assert parse_month("2026-04") == "2026-04"
    for bad in ("2026-4", "2026-13", "04-2026", "", "2026-04-01"):
        with pytest.raises(ValueError, match="must look like 2026-04"):
            parse_month(bad)


@given(
    st.integers(1, 8),
    st.sampled_from(["modify", "delete_row", "drop_entry", "patch_record_hash", "swap_rows"]),
)
def test_any_single_tampering_is_detected(target, how):
    db = {i: facts(i) for i in range(1, 9)}
    entries = link(None, sealables(db), T0)
    if how == "modify":
        db[target] = db[target] | {"seq": -1}
    elif how == "delete_row":
        del db[target]
    elif how == "drop_entry":
        anchor = entries[-1].entry_hash
        entries = [e for e in entries if e.seq != target]
        if target == 8:  # dropping the newest entry leaves a shorter, consistent chain: a published anchor shows it
            assert check_anchor(anchor, {e.entry_hash: e for e in entries}.get(anchor)) is not None
            return
    elif how == "patch_record_hash":
        i = target - 1
        entries[i] = dataclasses.replace(entries[i], record_hash="f" * 64)
    else:
        other = target % 8 + 1
        db[target], db[other] = db[other], db[target]
    assert verify(entries, db) != []
