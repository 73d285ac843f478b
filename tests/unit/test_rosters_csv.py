"""Shifts and roster CSV import: all or nothing, with an error per bad line."""

from __future__ import annotations

from datetime import date, time

from server.duty import RosterEntry, Shift, parse_roster_csv, parse_shifts_csv
from tests.support.month import scripted_month

HEADER = (
    "shift_id,post_id,site_id,name,start,end,checkin_window_min,late_grace_min,early_leave_grace_min,"
    "patrol_interval_min,tz"
)
DAY = "day,gate,site-a,Day,06:00,14:00,60,10,10,,Asia/Shanghai"
NIGHT = 'night,gate,site-a,"Night, gate",22:00,6:00,60,10,10,120,Asia/Shanghai'
SHIFTS = [
    Shift("day", "gate", "site-a", "Day", time(6), time(14), 60, 10, 10, None, "Asia/Shanghai"),
    Shift("late", "gate", "site-a", "Late", time(10), time(18), 60, 10, 10, None, "Asia/Shanghai"),
    Shift("night", "gate", "site-a", "Night", time(22), time(6), 60, 10, 10, 120, "Asia/Shanghai"),
]


def test_shifts_parse_with_optional_patrol_quoted_names_and_any_column_order():
    shifts, errors = parse_shifts_csv(f"\ufeff{HEADER}\n{DAY}\n\n{NIGHT}\n")
    assert errors == []
    assert shifts[0] == SHIFTS[0]
    assert (shifts[1].name, shifts[1].end, shifts[1].patrol_interval_min) == ("Night, gate", time(6), 120)
    reordered = "tz," + HEADER.removesuffix(",tz")
    assert parse_shifts_csv(f"{reordered}\nUTC,s,p,x,n,08:00,16:00:30,0,0,0,\n")[0][0].end == time(16, 0, 30)


def test_bad_shift_lines_are_reported_by_line_and_nothing_is_imported():
    text = "\n".join(
        [
            HEADER,
            DAY,
            "a,gate,site-a,A,25:00,14:00,60,10,10,,Asia/Shanghai",
            "b,gate,site-a,B,6am,14:00,60,10,10,,Asia/Shanghai",
            "c,gate,site-a,C,06:00,14:00,sixty,10,10,,Asia/Shanghai",
            "d,gate,site-a,D,06:00,14:00,60,-1,10,,Asia/Shanghai",
            "e,gate,site-a,E,06:00,14:00,60,10,10,0,Asia/Shanghai",
            "f,gate,site-a,F,06:00,14:00,60,10,10,,Asia/Shanghia",
            "g,gate,site-a,G,06:00,14:00,60,10,10,",
            DAY,
            ",gate,site-a,H,06:00,14:00,60,10,10,,UTC",
        ]
    )
    shifts, errors = parse_shifts_csv(text)
    assert shifts == []
    assert [line for line, _ in errors] == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    messages = dict(errors)
    assert "not a time of day" in messages[3] and "time like 06:00" in messages[4]
    assert "checkin_window_min" in messages[5] and "late_grace_min" in messages[6]
    assert "patrol_interval_min" in messages[7] and "unknown IANA time zone 'Asia/Shanghia'" in messages[8]
    assert "expected 11 fields" in messages[9] and "already defined on line 2" in messages[10]
    assert "shift_id" in messages[11]


def test_a_wrong_header_or_no_header_is_an_error_on_line_one():
    assert parse_shifts_csv("id,start,end\nday,06:00,14:00\n") == (
        [],
        [(1, f"header must name the columns {HEADER}; got id,start,end")],
    )
    assert parse_shifts_csv("") == ([], [(1, f"missing header: {HEADER}")])
    assert parse_roster_csv("date,shift_id,guard_id\n", SHIFTS) == ([], [])


def test_roster_parses_against_known_shifts():
    entries, errors = parse_roster_csv("date,shift_id,guard_id\n2026-04-01,day,G-1\n2026-04-01,night,G-1\n", SHIFTS)
    assert errors == []
    assert entries == [RosterEntry("G-1", "day", date(2026, 4, 1)), RosterEntry("G-1", "night", date(2026, 4, 1))]


def test_bad_roster_lines_are_reported_by_line_and_nothing_is_imported():
    text = "\n".join(
        [
            "guard_id,date,shift_id",
            "G-1,2026-04-01,day",
            "G-2,2026-04-01,dya",
            "G-1,2026-04-01,day",
            "G-3,2026/04/01,day",
            "G-3,2026-02-30,day",
            "G-1,2026-04-01,late",
            ",2026-04-01,day",
            "G-1,2026-03-31,night",  # ends as the day shift starts: adjacent, not overlapping
            "G-4,2026-04-01",
        ]
    )
    entries, errors = parse_roster_csv(text, SHIFTS)
    assert entries == []
    assert errors == [
        (3, "unknown shift 'dya'"),
        (4, "duplicate of line 2"),
        (5, "date must be YYYY-MM-DD, got '2026/04/01'"),
        (6, "date '2026-02-30' is not a calendar date"),
        (7, "guard G-1 is already on day 2026-04-01 (line 2), which overlaps this shift"),
        (8, "guard_id must be a non-empty string of at most 64 characters, got ''"),
        (10, "expected 3 fields, got 2"),
    ]


def test_the_scripted_month_round_trips_through_csv():
    month = scripted_month()
    shifts, errors = parse_shifts_csv(month.shifts_csv())
    assert (shifts, errors) == (list(month.shifts), [])
    assert parse_roster_csv(month.roster_csv(), shifts) == (list(month.roster), [])
