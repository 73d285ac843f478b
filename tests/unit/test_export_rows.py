"""Attendance rows and totals from plain duty records: every day, local times, masked IDs, day counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from server.duty.shifts import Shift
from server.exports.rows import (
    NO_DUTY,
    DutyEntry,
    GuardInfo,
    Registry,
    SiteInfo,
    guard_rows,
    guard_totals,
    masked_id,
    month_days,
)

GUARD = GuardInfo("g-1", "李娜", "110105********002X", "Acme", ((date(2024, 1, 1), date(2026, 11, 15)),))
REGISTRY = Registry(
    sites={
        "north": SiteInfo("north", "North gate", "Asia/Shanghai"),
        "ber": SiteInfo("ber", "Berlin", "Europe/Berlin"),
    },
    posts={"gate": "Main gate"},
    shifts={
        "day": Shift("day", "gate", "north", "Day", time(8), time(16), tz="Asia/Shanghai"),
        "night": Shift("night", "gate", "north", "Night", time(22), time(6), tz="Asia/Shanghai"),
        "ber-night": Shift("ber-night", "gate", "ber", "Nacht", time(22), time(6), tz="Europe/Berlin"),
    },
)


def entry(day: date, status: str = "present", shift: str | None = "day", site: str = "north", **fields) -> DutyEntry:
    values = dict(first_in=None, last_out=None, minutes_worked=0, late_minutes=0, early_leave_minutes=0)
    values |= dict(overtime_minutes=0, check_in_method=None, corrected=False)
    values |= fields
    return DutyEntry("g-1", site, "gate" if shift else None, shift, day, status, **values)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_month_days_cover_the_calendar_month():
    assert len(month_days("2026-11")) == 30
    assert month_days("2028-02")[-1] == date(2028, 2, 29)
    assert month_days("2026-12")[0] == date(2026, 12, 1) and len(month_days("2026-12")) == 31
    for bad in ("2026-13", "2026-1", "26-11", "", "2026-11-01"):
        with pytest.raises(ValueError, match="month must look like 2026-11"):
            month_days(bad)


def test_every_day_gets_a_row_and_days_without_records_say_no_duty():
    days = month_days("2026-11")
    rows = guard_rows(GUARD, [entry(date(2026, 11, 2))], days, REGISTRY)
    assert [r.date for r in rows] == days
    assert [r.status for r in rows].count(NO_DUTY) == 29
    idle = rows[0]
    assert (idle.site, idle.shift, idle.first_in, idle.minutes_worked, idle.corrected) == ("", "", None, 0, False)
    assert idle.name == "李娜" and idle.id_number_masked == "110105********002X" and idle.employer == "Acme"


def test_times_are_local_to_the_site_and_night_shifts_end_the_next_day():
    night = entry(
        date(2026, 11, 3),
        shift="night",
        first_in=utc(2026, 11, 3, 13, 58),
        last_out=utc(2026, 11, 3, 22, 30),
        minutes_worked=510,
        check_in_method="card",
        corrected=True,
    )
    (row,) = guard_rows(GUARD, [night], [date(2026, 11, 3)], REGISTRY)
    assert row.scheduled_start == datetime(2026, 11, 3, 22, 0) and row.scheduled_end == datetime(2026, 11, 4, 6, 0)
    assert row.first_in == datetime(2026, 11, 3, 21, 58) and row.last_out == datetime(2026, 11, 4, 6, 30)
    assert (row.site_id, row.site, row.tz, row.post, row.shift) == (
        "north",
        "North gate",
        "Asia/Shanghai",
        "Main gate",
        "Night",
    )
    assert row.check_in_method == "card" and row.corrected and row.minutes_worked == 510


def test_a_shift_over_the_autumn_clock_change_keeps_its_wall_clock_times():
    # Europe/Berlin leaves summer time at 03:00 on 2026-10-25: the night is 9 hours long, 22:00 to 06:00 still.
    (row,) = guard_rows(
        GUARD, [entry(date(2026, 10, 24), shift="ber-night", site="ber")], [date(2026, 10, 24)], REGISTRY
    )
    assert row.scheduled_start == datetime(2026, 10, 24, 22, 0) and row.scheduled_end == datetime(2026, 10, 25, 6, 0)
    assert row.tz == "Europe/Berlin"


def test_several_records_on_a_day_are_in_time_order_with_unscheduled_visits_last():
    day = date(2026, 11, 4)
    visit = entry(day, "unscheduled", shift=None, first_in=utc(2026, 11, 4, 1, 0), minutes_worked=60)
    night = entry(day, "absent", shift="night")
    morning = entry(day, "late", shift="day", late_minutes=7)
    rows = guard_rows(GUARD, [visit, night, morning], [day], REGISTRY)
    assert [(r.shift, r.status) for r in rows] == [("Day", "late"), ("Night", "absent"), ("", "unscheduled")]
    assert rows[2].scheduled_start is None and rows[2].first_in == datetime(2026, 11, 4, 9, 0)


def test_certificate_status_is_the_one_on_each_day():
    days = [date(2026, 11, 15), date(2026, 11, 16)]
    rows = guard_rows(GUARD, [], days, REGISTRY)
    assert [r.certificate for r in rows] == ["valid", "expired"]
    unlicensed = GuardInfo("g-1", "x", None, None)
    assert guard_rows(unlicensed, [], days[:1], REGISTRY)[0].certificate == "missing"


def test_unknown_sites_shifts_and_posts_still_export_by_id():
    odd = DutyEntry(
        "g-1", "gone", "old-post", "old-shift", date(2026, 11, 2), "present", None, None, 1, 0, 0, 0, None, False
    )
    (row,) = guard_rows(GUARD, [odd], [date(2026, 11, 2)], REGISTRY)
    assert (row.site_id, row.site, row.tz, row.post, row.shift) == ("gone", "gone", "UTC", "old-post", "old-shift")
    assert row.scheduled_start is None


def test_records_of_another_guard_or_outside_the_days_are_refused():
    other = DutyEntry("g-2", "north", "gate", "day", date(2026, 11, 2), "present", None, None, 0, 0, 0, 0, None, False)
    with pytest.raises(ValueError, match="g-2"):
        guard_rows(GUARD, [other], [date(2026, 11, 2)], REGISTRY)
    with pytest.raises(ValueError, match="outside the days"):
        guard_rows(GUARD, [entry(date(2026, 10, 31))], month_days("2026-11"), REGISTRY)


def test_totals_count_days_once_per_category_and_add_up_minutes():
    entries = [
        entry(date(2026, 11, 2), "late", late_minutes=7, minutes_worked=473, first_in=utc(2026, 11, 2, 0, 7)),
        entry(date(2026, 11, 3), "late_and_early_leave", late_minutes=3, early_leave_minutes=10, minutes_worked=467),
        entry(date(2026, 11, 4), "absent"),
        entry(date(2026, 11, 4), "unscheduled", shift=None, minutes_worked=60),
        entry(date(2026, 11, 5), "missing_check_out", minutes_worked=0, corrected=True),
        entry(date(2026, 11, 6), "present", shift="day", minutes_worked=480),
        entry(date(2026, 11, 6), "present", shift="night", minutes_worked=480, overtime_minutes=15),
        entry(date(2026, 11, 7), "in_progress"),
    ]
    totals = guard_totals(GUARD, guard_rows(GUARD, entries, month_days("2026-11"), REGISTRY))
    assert totals.days_rostered == 6  # the 2nd to the 7th; the 6th once for its two shifts
    assert totals.days_present == 5  # the 7th is not over and nobody came yet
    assert (totals.days_late, totals.days_early_leave, totals.days_absent) == (2, 1, 1)
    assert (totals.days_missing_punch, totals.days_unscheduled, totals.corrected_records) == (1, 1, 1)
    assert totals.minutes_worked == 473 + 467 + 60 + 480 + 480
    assert (totals.late_minutes, totals.early_leave_minutes, totals.overtime_minutes) == (10, 10, 15)
    assert totals.id_number_masked == "110105********002X"


def test_a_clear_resident_id_never_passes_through():
    assert masked_id("11010519491231002X") == "110105********002X"
    assert masked_id(" 11010519491231002x ") == "110105********002X"
    assert masked_id("110105********002X") == "110105********002X"
    assert masked_id(None) == "" and masked_id("") == ""
    clear = GuardInfo("g-1", "x", "11010519491231002X", None)
    rows = guard_rows(clear, [entry(date(2026, 11, 2))], [date(2026, 11, 2), date(2026, 11, 3)], REGISTRY)
    assert {r.id_number_masked for r in rows} == {"110105********002X"}
    assert guard_totals(clear, rows).id_number_masked == "110105********002X"
