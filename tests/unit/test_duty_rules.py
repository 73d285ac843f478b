"""Duty rules on hand-made cases: every status, windows and graces at their limits, midnight, DST, patrols, handover."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest

from server.duty import (
    Punch,
    RosterEntry,
    Shift,
    all_instances,
    assign_punches,
    duty_records,
    handover_findings,
    instance,
    record_findings,
)
from server.duty.handover import successions
from server.duty.shifts import zone

SH = "Asia/Shanghai"
D1 = date(2026, 4, 1)
DAY = Shift("day", "gate", "site-a", "Day", time(6), time(14), 60, 10, 10, None, SH)
EVE = Shift("eve", "gate", "site-a", "Evening", time(14), time(22), 60, 10, 10, None, SH)
NIGHT = Shift("night", "gate", "site-a", "Night", time(22), time(6), 60, 10, 10, 120, SH)
_ids = itertools.count(1)


def at(hh: int, mm: int = 0, ss: int = 0, day: date = D1, tz: str = SH) -> datetime:
    """A local wall time as aware UTC; hours past 23 roll into the next days."""
    local = datetime.combine(day + timedelta(days=hh // 24), time(hh % 24, mm, ss), tzinfo=zone(tz))
    return local.astimezone(UTC)


def punch(kind: str, moment: datetime, guard: str = "G-1", site: str = "site-a", **extra) -> Punch:
    return Punch(f"e{next(_ids)}", guard, site, f"{site}-t1", kind, moment, **extra)


def log(punches, now, shifts=(DAY,), roster=(("G-1", "day", D1),), **options):
    insts = all_instances(shifts, D1 - timedelta(days=1), D1 + timedelta(days=1))
    entries = [RosterEntry(*row) for row in roster]
    return duty_records(insts, entries, punches, now, **options)


def one(punches, now=None, shifts=(DAY,), **options):
    now = now or at(48)
    (record,) = [r for r in log(punches, now, shifts, [("G-1", shifts[0].shift_id, D1)], **options) if r.shift_id]
    return record


def test_instances_are_utc_intervals_and_the_night_shift_ends_the_next_day():
    day, night = instance(DAY, D1), instance(NIGHT, D1)
    assert (day.start_utc, day.end_utc) == (datetime(2026, 3, 31, 22, tzinfo=UTC), datetime(2026, 4, 1, 6, tzinfo=UTC))
    assert (night.start_utc, night.end_utc) == (
        datetime(2026, 4, 1, 14, tzinfo=UTC),
        datetime(2026, 4, 1, 22, tzinfo=UTC),
    )
    assert NIGHT.crosses_midnight and night.length == timedelta(hours=8)


def test_daylight_saving_nights_are_seven_and_nine_hours_long_in_berlin():
    berlin = Shift("n", "p", "s", "Night", time(22), time(6), tz="Europe/Berlin")
    spring, autumn = instance(berlin, date(2026, 3, 28)), instance(berlin, date(2026, 10, 24))
    assert spring.start_utc == datetime(2026, 3, 28, 21, tzinfo=UTC) and spring.length == timedelta(hours=7)
    assert autumn.length == timedelta(hours=9)
    # A wall time in the spring-forward gap reads with the offset before it: 02:30 is 03:30 CEST.
    gap = Shift("g", "p", "s", "Gap", time(2, 30), time(4), tz="Europe/Berlin")
    assert instance(gap, date(2026, 3, 29)).start_utc == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="daylight-saving gap"):
        instance(Shift("x", "p", "s", "x", time(2, 30), time(3), tz="Europe/Berlin"), date(2026, 3, 29))


def test_worked_time_over_the_spring_forward_night_is_real_elapsed_time():
    berlin = Shift("night", "gate", "site-a", "Night", time(22), time(6), 60, 10, 10, None, "Europe/Berlin")
    night = date(2026, 3, 28)
    insts = all_instances([berlin], night, night)
    punches = [
        punch("check_in", at(21, 55, day=night, tz="Europe/Berlin")),
        punch("check_out", at(30, 30, day=night, tz="Europe/Berlin")),
    ]
    (r,) = duty_records(insts, [RosterEntry("G-1", "night", night)], punches, at(72, day=night))
    assert (r.status, r.minutes_worked, r.overtime_minutes) == ("present", 7 * 60 + 35, 30)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(tz="Mars/Olympus"), "unknown IANA time zone"),
        (dict(tz="Asia"), "unknown IANA time zone"),
        (dict(start=time(6, tzinfo=UTC)), "without a zone"),
        (dict(late_grace_min=-1), "late_grace_min"),
        (dict(checkin_window_min=True), "checkin_window_min"),
        (dict(patrol_interval_min=0), "patrol_interval_min"),
        (dict(shift_id=""), "shift_id"),
    ],
)
def test_shift_validation_names_the_field(bad, message):
    fields = dict(shift_id="s", post_id="p", site_id="x", name="n", start=time(6), end=time(14), tz=SH)
    with pytest.raises(ValueError, match=message):
        Shift(**{**fields, **bad})


def test_other_bad_inputs_are_clear_value_errors():
    with pytest.raises(ValueError, match="must be a date"):
        RosterEntry("G-1", "day", datetime(2026, 4, 1))
    with pytest.raises(ValueError, match="before first_date"):
        all_instances([DAY], D1, D1 - timedelta(days=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        punch("check_in", datetime(2026, 4, 1, 6))
    with pytest.raises(ValueError, match="punch type"):
        punch("denied", at(6))
    with pytest.raises(ValueError, match="timezone-aware"):
        log([], datetime(2026, 4, 2))
    with pytest.raises(ValueError, match="no shift instance"):
        log([], at(48), roster=[("G-1", "day", date(2026, 5, 1))])


@pytest.mark.parametrize(
    "check_in, check_out, status, late, early",
    [
        (at(5, 50), at(14), "present", 0, 0),
        (at(6, 10), at(13, 50), "present", 0, 0),  # both exactly at the grace limit
        (at(6, 10, 1), at(14), "late", 11, 0),  # one second past the grace: the started minute counts
        (at(6), at(13, 49, 59), "early_leave", 0, 11),
        (at(7, 30), at(12), "late_and_early_leave", 90, 120),
    ],
)
def test_late_and_early_leave_against_the_graces(check_in, check_out, status, late, early):
    r = one([punch("check_in", check_in), punch("check_out", check_out)])
    assert (r.status, r.late_minutes, r.early_leave_minutes) == (status, late, early)
    assert r.minutes_worked == (check_out - check_in) // timedelta(minutes=1)


def test_overtime_counts_only_time_after_the_scheduled_end():
    r = one([punch("check_in", at(5, 30)), punch("check_out", at(15, 45, 30), method="card", distance=None)])
    assert (r.status, r.minutes_worked, r.overtime_minutes) == ("present", 615, 105)
    assert (r.check_in_method, r.check_in_distance) == ("face", None)


def test_first_check_in_and_last_check_out_define_the_worked_interval():
    punches = [punch("check_in", at(6)), punch("check_out", at(11)), punch("check_in", at(11, 30))]
    r = one(punches + [punch("check_in", at(5, 55)), punch("check_out", at(14, 2)), punch("check_out", at(5, 50))])
    assert (r.status, r.first_in, r.last_out, r.minutes_worked, r.overtime_minutes) == (
        "present",
        at(5, 55),
        at(14, 2),
        487,
        2,
    )


def test_check_in_window_boundaries():
    assert one([punch("check_in", at(5)), punch("check_out", at(14))]).status == "present"
    records = log([punch("check_in", at(4, 59, 59)), punch("check_out", at(14))], at(48))
    assert [r.status for r in records] == ["missing_check_in", "unscheduled"]


def test_check_out_window_boundaries():
    assert one([punch("check_in", at(6)), punch("check_out", at(18))]).overtime_minutes == 240
    records = log([punch("check_in", at(6)), punch("check_out", at(18, 0, 1))], at(48))
    assert [r.status for r in records] == ["missing_check_out", "unscheduled"]


def test_missing_check_out_waits_for_the_check_out_window():
    punches = [punch("check_in", at(6))]
    assert one(punches, now=at(18)).status == "in_progress"
    r = one(punches, now=at(18, 0, 1))
    assert (r.status, r.first_in, r.last_out, r.minutes_worked) == ("missing_check_out", at(6), None, 0)


def test_absent_only_once_the_shift_is_over():
    assert one([], now=at(5)).status == "in_progress"
    assert one([], now=at(14)).status == "in_progress"
    assert one([], now=at(14, 0, 1)).status == "absent"


def test_in_progress_before_the_end_still_shows_lateness():
    r = one([punch("check_in", at(6, 40)), punch("check_out", at(9))], now=at(9, 30))
    assert (r.status, r.late_minutes) == ("in_progress", 40)


def test_a_check_out_without_check_in_is_a_missing_check_in():
    r = one([punch("check_out", at(14))])
    assert (r.status, r.first_in, r.last_out, r.minutes_worked) == ("missing_check_in", None, at(14), 0)


def test_the_first_patrol_opens_the_shift_when_there_is_no_check_in():
    r = one([punch("patrol", at(6, 30), method="card"), punch("check_out", at(14))])
    assert (r.status, r.first_in, r.late_minutes, r.check_in_method) == ("late", at(6, 30), 30, "card")


def test_unscheduled_presence():
    visits = [
        punch("check_in", at(10), guard="G-9"),
        punch("check_out", at(11), guard="G-9"),
        punch("check_in", at(12), guard="G-9"),
        punch("check_out", at(12, 30), guard="G-9"),
        punch("check_in", at(7), site="site-b"),  # rostered at site-a, seen at site-b
    ]
    # site-b has no shifts, so its zone must be given to date the visit locally.
    records = log(visits + [punch("check_in", at(6)), punch("check_out", at(14))], at(48), site_tz={"site-b": SH})
    assert [(r.guard_id, r.site_id, r.status, r.minutes_worked) for r in records] == [
        ("G-1", "site-a", "present", 480),
        ("G-1", "site-b", "unscheduled", 0),
        ("G-9", "site-a", "unscheduled", 60),
        ("G-9", "site-a", "unscheduled", 30),
    ]
    assert all(r.date == D1 and r.shift_id is None for r in records[1:])


def test_a_double_shift_splits_at_the_changeover():
    punches = [punch("check_in", at(5, 50)), punch("check_out", at(14)), punch("check_in", at(14))]
    # A patrol at exactly 14:00 is inside both shifts: the tie goes to the nearest start.
    punches += [punch("patrol", at(13, 59)), punch("patrol", at(14)), punch("check_out", at(22))]
    insts = all_instances([DAY, EVE], D1, D1)
    roster = [RosterEntry("G-1", "day", D1), RosterEntry("G-1", "eve", D1)]
    assignment = assign_punches(insts, roster, punches)
    assert [p.type for p in assignment.duties[("G-1", "day", D1)]] == ["check_in", "patrol", "check_out"]
    assert [p.type for p in assignment.duties[("G-1", "eve", D1)]] == ["check_in", "patrol", "check_out"]
    records = duty_records(insts, roster, punches, at(48))
    assert [(r.shift_id, r.status, r.minutes_worked) for r in records] == [
        ("day", "present", 490),
        ("eve", "present", 480),
    ]


def test_midnight_crossing_night_shift_with_patrols():
    punches = [punch("check_in", at(21, 50)), punch("patrol", at(24)), punch("patrol", at(26, 10))]
    punches += [punch("patrol", at(28, 21)), punch("check_out", at(30))]
    r = one(punches, shifts=(NIGHT,))
    assert (r.status, r.date, r.minutes_worked, len(r.punches)) == ("present", D1, 490, 5)
    # 00:00 -> 02:10 is exactly the interval plus grace; 02:10 -> 04:21 is one minute more.
    assert [(f.kind, f.at, f.minutes) for f in r.patrol_findings] == [("missed_patrol", at(26, 10), 131)]
    assert "2026-04-02 02:10" in r.patrol_findings[0].detail


def test_patrols_are_owed_only_on_the_scheduled_shift_and_up_to_now():
    early = one([punch("check_in", at(21)), punch("patrol", at(24, 5)), punch("check_out", at(30))], shifts=(NIGHT,))
    # Owed from 22:00, not from the check-in an hour before: 22:00 -> 00:05 is fine, 00:05 -> 06:00 is not.
    assert [(f.at, f.minutes) for f in early.patrol_findings] == [(at(24, 5), 355)]
    live = one([punch("check_in", at(22)), punch("patrol", at(24))], now=at(27), shifts=(NIGHT,))
    assert (live.status, [(f.at, f.minutes) for f in live.patrol_findings]) == ("in_progress", [(at(24), 180)])


def test_handover_gaps_between_consecutive_shifts():
    def gaps(punches, tolerance_min=5, extra=()):
        roster = [("G-1", "day", D1), ("G-2", "eve", D1), *extra]
        records = log(punches, at(72), shifts=(DAY, EVE, NIGHT), roster=roster)
        insts = all_instances([DAY, EVE, NIGHT], D1, D1)
        return [(f.guard_id, f.at, f.minutes) for f in handover_findings(records, insts, tolerance_min=tolerance_min)]

    day = [punch("check_in", at(6)), punch("check_out", at(14))]
    assert gaps(day + [punch("check_in", at(14, 20), guard="G-2")]) == [("G-2", at(14), 20)]
    assert gaps(day + [punch("check_in", at(14, 5), guard="G-2")]) == []  # exactly the tolerance
    assert gaps(day + [punch("check_in", at(14, 5, 1), guard="G-2")]) == [("G-2", at(14), 5)]
    assert gaps(day + [punch("check_in", at(13, 50), guard="G-2")]) == []
    assert gaps(day) == [("G-2", at(14), 480)]  # the next guard is absent
    assert gaps([punch("check_in", at(6)), punch("check_in", at(14, 20), guard="G-2")]) == [("G-2", at(14), 20)]
    assert gaps([punch("check_in", at(14, 20), guard="G-2")]) == []  # nobody came to hand over
    # Two guards on the day shift: the post is manned until the last of them leaves.
    pair = [punch("check_in", at(6)), punch("check_out", at(13)), punch("check_in", at(6), guard="G-3")]
    pair += [punch("check_out", at(14), guard="G-3"), punch("check_in", at(14, 2), guard="G-2")]
    assert gaps(pair, extra=[("G-3", "day", D1)]) == []
    assert gaps(pair, tolerance_min=1, extra=[("G-3", "day", D1)]) == [("G-2", at(14), 2)]


def test_handover_pairs_take_over_the_post_and_skip_scheduled_pauses():
    long_day = Shift("long", "gate", "site-a", "Long", time(6), time(18), tz=SH)
    inner = Shift("inner", "gate", "site-a", "Inner", time(8), time(16), tz=SH)
    night = Shift("night", "gate", "site-a", "Night", time(18), time(6), tz=SH)
    morning = Shift("am", "lobby", "site-a", "Morning", time(6), time(14), tz=SH)
    afternoon = Shift("pm", "lobby", "site-a", "Afternoon", time(15), time(22), tz=SH)
    pairs = successions(all_instances([long_day, inner, night, morning, afternoon], D1, D1))
    # The inner shift sits inside the long one; the lobby closes 14:00-15:00 by plan.
    assert [(a.shift_id, b.shift_id) for a, b in pairs] == [("long", "night")]


def test_record_findings_list_the_exceptions():
    records = log([punch("check_in", at(6, 30)), punch("check_out", at(12))], at(48))
    findings = record_findings(records)
    assert [(f.kind, f.minutes) for f in findings] == [("early_leave", 120), ("late", 30)]
    assert findings[1].key == "late:site-a:day:2026-04-01:G-1:20260331T223000Z"
    late_and_gone = log([punch("check_in", at(6, 30))], at(48))
    assert [f.kind for f in record_findings(late_and_gone)] == ["late", "missing_check_out"]
    assert record_findings(log([punch("check_in", at(6, 30))], at(12))) == []  # not final yet


def test_duplicates_and_order_change_nothing():
    punches = [punch("check_in", at(6, 30)), punch("patrol", at(9)), punch("check_out", at(12))]
    expected = log(punches, at(48))
    assert log(list(reversed(punches)) + punches, at(48)) == expected
    shanghai = Punch("e-x", "G-1", "site-a", "t", "check_in", at(6).astimezone(zone(SH)))
    assert shanghai.at.tzinfo is UTC and shanghai == Punch("e-x", "G-1", "site-a", "t", "check_in", at(6))
