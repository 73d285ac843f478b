"""Attendance rows and per-guard totals from plain duty records (pure: no database, no files)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

from protocol.cards import MASK, mask_card_number
from server.duty.shifts import Shift, instance, zone
from server.guard_records import status_on as certificate_status_on

NO_DUTY = "no_duty"  # a day without any duty record for the guard: not rostered, not seen
# Statuses that put the guard at the site that day (a missing punch still means they were there).
ATTENDED = ("present", "late", "early_leave", "late_and_early_leave", "missing_check_in", "missing_check_out")
ATTENDED += ("unscheduled",)
LATE = ("late", "late_and_early_leave")
EARLY = ("early_leave", "late_and_early_leave")
MISSING_PUNCH = ("missing_check_in", "missing_check_out")
MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def month_days(month: str) -> list[date]:
    """Every date of ``YYYY-MM``."""
    found = MONTH.fullmatch(month or "")
    if not found:
        raise ValueError(f"month must look like 2026-11, got {month!r}")
    year, number = int(found.group(1)), int(found.group(2))
    return [date(year, number, day) for day in range(1, calendar.monthrange(year, number)[1] + 1)]


def masked_id(value: str | None) -> str:
    """The masked resident ID; a value that somehow holds the clear number is masked here, never passed on."""
    if not value:
        return ""
    return value if MASK in value else mask_card_number(value.strip().upper())


@dataclass(frozen=True)
class GuardInfo:
    guard_id: str
    name: str
    id_number_masked: str | None
    employer: str | None
    # (issued_on, valid_until) of each guard certificate; None is open.
    certificates: tuple[tuple[date | None, date | None], ...] = ()


@dataclass(frozen=True)
class SiteInfo:
    site_id: str
    name: str
    tz: str


@dataclass(frozen=True)
class DutyEntry:
    """A stored duty record as plain values; ``first_in``/``last_out`` are aware UTC."""

    guard_id: str
    site_id: str
    post_id: str | None
    shift_id: str | None
    date: date
    status: str
    first_in: datetime | None
    last_out: datetime | None
    minutes_worked: int
    late_minutes: int
    early_leave_minutes: int
    overtime_minutes: int
    check_in_method: str | None
    corrected: bool


@dataclass(frozen=True)
class Registry:
    """What rows name: sites (with their zones), post names and shifts, by id."""

    sites: Mapping[str, SiteInfo]
    posts: Mapping[str, str]
    shifts: Mapping[str, Shift]


@dataclass(frozen=True)
class AttendanceRow:
    """One line of the export; times are naive wall-clock times in the site's zone (``tz``)."""

    date: date
    guard_id: str
    name: str
    id_number_masked: str
    certificate: str
    employer: str
    site_id: str
    site: str
    tz: str
    post: str
    shift: str
    scheduled_start: datetime | None
    scheduled_end: datetime | None
    first_in: datetime | None
    last_out: datetime | None
    status: str
    minutes_worked: int
    late_minutes: int
    early_leave_minutes: int
    overtime_minutes: int
    check_in_method: str
    corrected: bool


@dataclass(frozen=True)
class GuardTotals:
    """A guard's month; a day counts once in every category any of its records shows."""

    guard_id: str
    name: str
    id_number_masked: str
    employer: str
    days_rostered: int
    days_present: int
    days_late: int
    days_early_leave: int
    days_absent: int
    days_missing_punch: int
    days_unscheduled: int
    corrected_records: int
    minutes_worked: int
    late_minutes: int
    early_leave_minutes: int
    overtime_minutes: int


def _local(moment: datetime | None, tz: str) -> datetime | None:
    return None if moment is None else moment.astimezone(zone(tz)).replace(tzinfo=None)


@lru_cache(maxsize=8192)  # a site's guards share its shifts: one computation per shift and day, not per guard
def _scheduled(shift: Shift | None, day: date, tz: str) -> tuple[datetime | None, datetime | None]:
    if shift is None:
        return None, None
    try:
        planned = instance(shift, day)
    except ValueError:  # a shift wholly inside a daylight-saving gap has no times that day
        return None, None
    return _local(planned.start_utc, tz), _local(planned.end_utc, tz)


def _order(entry: DutyEntry, registry: Registry) -> tuple:
    shift = registry.shifts.get(entry.shift_id or "")
    start = _scheduled(shift, entry.date, "UTC")[0]
    seen = start or _local(entry.first_in or entry.last_out, "UTC") or datetime.min
    # As the duty engine orders a day: rostered shifts by start time, then unscheduled visits.
    return (entry.shift_id is None, seen, entry.shift_id or "", entry.site_id)


def _row(guard: GuardInfo, entry: DutyEntry, registry: Registry) -> AttendanceRow:
    site = registry.sites.get(entry.site_id) or SiteInfo(entry.site_id, entry.site_id, "UTC")
    shift = registry.shifts.get(entry.shift_id or "")
    start, end = _scheduled(shift, entry.date, site.tz)
    return AttendanceRow(
        date=entry.date,
        guard_id=guard.guard_id,
        name=guard.name,
        id_number_masked=masked_id(guard.id_number_masked),
        certificate=certificate_status_on(list(guard.certificates), entry.date),
        employer=guard.employer or "",
        site_id=site.site_id,
        site=site.name,
        tz=site.tz,
        post=registry.posts.get(entry.post_id or "", entry.post_id or ""),
        shift=(shift.name or shift.shift_id) if shift is not None else (entry.shift_id or ""),
        scheduled_start=start,
        scheduled_end=end,
        first_in=_local(entry.first_in, site.tz),
        last_out=_local(entry.last_out, site.tz),
        status=entry.status,
        minutes_worked=entry.minutes_worked,
        late_minutes=entry.late_minutes,
        early_leave_minutes=entry.early_leave_minutes,
        overtime_minutes=entry.overtime_minutes,
        check_in_method=entry.check_in_method or "",
        corrected=entry.corrected,
    )


def _no_duty(guard: GuardInfo, day: date) -> AttendanceRow:
    blank = dict.fromkeys(("site_id", "site", "tz", "post", "shift", "check_in_method"), "")
    times = dict.fromkeys(("scheduled_start", "scheduled_end", "first_in", "last_out"))
    minutes = dict.fromkeys(("minutes_worked", "late_minutes", "early_leave_minutes", "overtime_minutes"), 0)
    return AttendanceRow(
        date=day,
        guard_id=guard.guard_id,
        name=guard.name,
        id_number_masked=masked_id(guard.id_number_masked),
        certificate=certificate_status_on(list(guard.certificates), day),
        employer=guard.employer or "",
        status=NO_DUTY,
        corrected=False,
        **blank,
        **times,
        **minutes,
    )


def guard_rows(
    guard: GuardInfo, entries: Sequence[DutyEntry], days: Sequence[date], registry: Registry
) -> list[AttendanceRow]:
    """Every day of ``days`` for one guard: a row per duty record that day, or one ``no_duty`` row."""
    by_day: dict[date, list[DutyEntry]] = {}
    for entry in entries:
        if entry.guard_id != guard.guard_id:
            raise ValueError(f"duty record of {entry.guard_id} passed with guard {guard.guard_id}")
        by_day.setdefault(entry.date, []).append(entry)
    rows = []
    for day in days:
        found = by_day.pop(day, [])
        if len(found) > 1:
            found.sort(key=lambda e: _order(e, registry))
        rows += [_row(guard, entry, registry) for entry in found] or [_no_duty(guard, day)]
    if by_day:
        raise ValueError(f"duty records of {guard.guard_id} outside the days asked for: {sorted(by_day)[0]}")
    return rows


def attended(row: AttendanceRow) -> bool:
    return row.status in ATTENDED or (row.status == "in_progress" and row.first_in is not None)


def guard_totals(guard: GuardInfo, rows: Sequence[AttendanceRow]) -> GuardTotals:
    def days(test) -> int:
        return len({r.date for r in rows if test(r)})

    return GuardTotals(
        guard_id=guard.guard_id,
        name=guard.name,
        id_number_masked=masked_id(guard.id_number_masked),
        employer=guard.employer or "",
        days_rostered=days(lambda r: r.shift != ""),
        days_present=days(attended),
        days_late=days(lambda r: r.status in LATE),
        days_early_leave=days(lambda r: r.status in EARLY),
        days_absent=days(lambda r: r.status == "absent"),
        days_missing_punch=days(lambda r: r.status in MISSING_PUNCH),
        days_unscheduled=days(lambda r: r.status == "unscheduled"),
        corrected_records=sum(r.corrected for r in rows),
        minutes_worked=sum(r.minutes_worked for r in rows),
        late_minutes=sum(r.late_minutes for r in rows),
        early_leave_minutes=sum(r.early_leave_minutes for r in rows),
        overtime_minutes=sum(r.overtime_minutes for r in rows),
    )


def aware(moment: datetime | None) -> datetime | None:
    """A stored naive-UTC time as aware UTC."""
    return None if moment is None else moment.replace(tzinfo=UTC)
