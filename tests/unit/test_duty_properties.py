"""Duty engine invariants on generated punches, and a scripted month checked against its script."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.duty import (
    Punch,
    RosterEntry,
    Shift,
    all_instances,
    duty_records,
    handover_findings,
    record_findings,
)
from tests.support.month import scripted_month, to_punches

SH = "Asia/Shanghai"
D1 = date(2026, 4, 1)
BASE = datetime(2026, 3, 31, 16, tzinfo=UTC)  # local midnight starting D1
SHIFTS = [
    Shift("day", "gate", "site-a", "Day", time(6), time(14), 60, 10, 10, None, SH),
    Shift("eve", "gate", "site-a", "Evening", time(14), time(22), 30, 5, 5, None, SH),
    Shift("night", "gate", "site-a", "Night", time(22), time(6), 60, 10, 10, 90, SH),
    Shift("lobby", "lobby", "site-b", "Lobby", time(8), time(20), 15, 0, 0, 60, SH),
]
INSTANCES = all_instances(SHIFTS, D1, D1 + timedelta(days=1))
GUARDS = ("G-1", "G-2", "G-3", "G-4")

rosters = st.lists(
    st.builds(
        RosterEntry,
        st.sampled_from(GUARDS[:3]),
        st.sampled_from([s.shift_id for s in SHIFTS]),
        st.sampled_from([D1, D1 + timedelta(days=1)]),
    ),
    max_size=8,
    unique=True,
)
BY_DUTY = {(i.shift_id, i.date): i for i in INSTANCES}
LAST_CLOSE = max(i.end_utc for i in INSTANCES) + timedelta(hours=4)
moments = st.builds(lambda s: BASE + timedelta(seconds=s), st.integers(-2 * 3600, 3 * 86400))
kinds = st.sampled_from(["check_in", "check_out", "patrol"])
methods = st.sampled_from(["face", "card"])


@st.composite
def punch_near_a_duty(draw, roster: list[RosterEntry]) -> tuple:
    # Mostly the rostered guard around their shift, so punches land in windows, overlaps and graces.
    entry = draw(st.sampled_from(roster))
    inst = BY_DUTY[(entry.shift_id, entry.date)]
    offset = draw(st.integers(-90 * 60, int(inst.length.total_seconds()) + 5 * 3600))
    guard = draw(st.sampled_from([entry.guard_id] * 4 + list(GUARDS)))
    return guard, inst.shift.site_id, draw(kinds), inst.start_utc + timedelta(seconds=offset), draw(methods)


@st.composite
def scenarios(draw) -> tuple[list[RosterEntry], list[Punch], datetime]:
    roster = draw(rosters)
    anywhere = st.tuples(st.sampled_from(GUARDS), st.sampled_from(["site-a", "site-b"]), kinds, moments, methods)
    rows = draw(st.lists(st.one_of(punch_near_a_duty(roster), anywhere) if roster else anywhere, max_size=25))
    punches = [Punch(f"e{n}", g, site, f"{site}-t", k, t, m) for n, (g, site, k, t, m) in enumerate(rows)]
    now = draw(st.one_of(moments, st.just(LAST_CLOSE + timedelta(seconds=1))))
    return roster, punches, now


EXAMPLES = settings(deadline=None, max_examples=300)


@EXAMPLES
@given(scenarios(), st.randoms(use_true_random=False))
def test_any_order_gives_the_same_duty_log(scenario, rng):
    roster, punches, now = scenario
    shuffled = list(punches)
    rng.shuffle(shuffled)
    records = duty_records(INSTANCES, roster, punches, now)
    again = duty_records(INSTANCES, list(reversed(roster)), shuffled, now)
    assert again == records
    assert record_findings(again) == record_findings(records)
    assert handover_findings(list(reversed(again)), INSTANCES) == handover_findings(records, INSTANCES)


@EXAMPLES
@given(scenarios())
def test_exactly_one_record_per_rostered_guard_shift_and_every_punch_used_once(scenario):
    roster, punches, now = scenario
    records = duty_records(INSTANCES, roster, punches, now)
    scheduled = [(r.guard_id, r.shift_id, r.date) for r in records if r.shift_id is not None]
    assert sorted(scheduled) == sorted((e.guard_id, e.shift_id, e.date) for e in roster)
    used = [event_id for r in records for event_id in r.punches]
    assert sorted(used) == sorted(p.event_id for p in punches)
    assert all(r.status == "unscheduled" for r in records if r.shift_id is None)
    assert records == sorted(records, key=lambda r: r.sort_key)


@EXAMPLES
@given(scenarios())
def test_minutes_stay_within_the_worked_interval(scenario):
    roster, punches, now = scenario
    for r in duty_records(INSTANCES, roster, punches, now):
        if r.first_in is None or r.last_out is None:
            assert r.minutes_worked == r.overtime_minutes == 0
            continue
        assert r.first_in <= r.last_out
        assert 0 <= r.overtime_minutes <= r.minutes_worked <= (r.last_out - r.first_in).total_seconds() / 60
        assert all(0 <= f.minutes for f in r.patrol_findings)


@EXAMPLES
@given(scenarios(), st.integers(1, 10**6))
def test_nothing_is_undecided_once_every_window_has_closed(scenario, later_s):
    roster, punches, _ = scenario
    now = LAST_CLOSE + timedelta(seconds=later_s)
    assert "in_progress" not in {r.status for r in duty_records(INSTANCES, roster, punches, now)}


@EXAMPLES
@given(scenarios(), st.data())
def test_a_replayed_punch_changes_nothing(scenario, data):
    roster, punches, now = scenario
    replays = data.draw(st.lists(st.sampled_from(punches), max_size=10)) if punches else []
    assert duty_records(INSTANCES, roster, punches + replays, now) == duty_records(INSTANCES, roster, punches, now)


def _check_month(month):
    records = duty_records(month.instances, month.roster, to_punches(month.punches), month.now)
    expected = month.expected
    assert dict(sorted(Counter(r.status for r in records).items())) == expected.statuses
    assert {(r.guard_id, r.shift_id, r.date): r.status for r in records if r.shift_id} == expected.by_duty
    assert sum(r.minutes_worked for r in records) == expected.minutes_worked
    assert sum(r.overtime_minutes for r in records) == expected.overtime_minutes
    assert sum(r.late_minutes for r in records) == expected.late_minutes
    assert sum(r.early_leave_minutes for r in records) == expected.early_leave_minutes
    assert sum(len(r.patrol_findings) for r in records) == expected.missed_patrols
    gaps = handover_findings(records, month.instances, tolerance_min=5)
    assert (len(gaps), sum(f.minutes for f in gaps)) == (expected.handover_gaps, expected.handover_gap_minutes)
    return records


def test_a_scripted_month_gives_exactly_the_scripted_duty_log():
    month = scripted_month()
    assert len(month.guards) == 50 and len(month.sites) == 5 and len(month.shifts) == 15
    assert len(month.roster) == 5 * 3 * 30
    records = _check_month(month)
    # Every status the script can produce shows up, so the comparison above is not vacuous.
    assert set(month.expected.statuses) == {r.status for r in records} >= {"present", "late", "absent", "unscheduled"}
    assert len(month.expected.statuses) == 7 and month.expected.missed_patrols and month.expected.handover_gaps


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_other_seeds_and_a_daylight_saving_month_in_berlin(seed):
    _check_month(scripted_month(seed, first_date=date(2026, 3, 15), days=30, tz="Europe/Berlin"))


def test_the_month_is_deterministic_and_plain():
    first, second = scripted_month(7), scripted_month(7)
    assert first.punches == second.punches and first.expected == second.expected
    assert scripted_month(8).punches != first.punches
    assert len({p["event_id"] for p in first.punches}) == len(first.punches)
    sample = first.punches[0]
    assert set(sample) == {
        "event_id",
        "guard_id",
        "site_id",
        "device_id",
        "type",
        "at",
        "method",
        "distance",
        "liveness",
    }
    assert sample["at"].tzinfo is UTC and sample["device_id"] == first.devices[sample["site_id"]]
