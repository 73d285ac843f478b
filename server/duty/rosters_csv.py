"""Parse shifts and roster CSV text, all or nothing, with an error per bad line."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import date, time

from server.duty.shifts import RosterEntry, Shift, ShiftInstance, instance

SHIFT_COLUMNS = (
    "shift_id",
    "post_id",
    "site_id",
    "name",
    "start",
    "end",
    "checkin_window_min",
    "late_grace_min",
    "early_leave_grace_min",
    "patrol_interval_min",
    "tz",
)
ROSTER_COLUMNS = ("date", "shift_id", "guard_id")

LineError = tuple[int, str]

_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^\d{1,5}$")


def _rows(text: str, columns: tuple[str, ...]) -> tuple[list[tuple[int, dict[str, str]]], list[LineError]]:
    """(line number, row) pairs; a header or shape problem is an error for its line."""
    if not isinstance(text, str):
        raise TypeError(f"expected CSV text, got {type(text).__name__}")
    # Spreadsheets save UTF-8 CSV with a byte-order mark, which would otherwise stick to the first column name.
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    rows: list[tuple[int, dict[str, str]]] = []
    errors: list[LineError] = []
    header: list[str] | None = None
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            # line_num is where the record ends, which is its own line unless a quoted cell spans lines.
            line = reader.line_num
            cells = [c.strip() for c in cells]
            if header is None:
                header = cells
                if sorted(header) != sorted(columns) or len(set(header)) != len(header):
                    return [], [(line, f"header must name the columns {','.join(columns)}; got {','.join(header)}")]
                continue
            if len(cells) != len(header):
                errors.append((line, f"expected {len(header)} fields, got {len(cells)}"))
                continue
            rows.append((line, dict(zip(header, cells, strict=True))))
    except csv.Error as exc:
        errors.append((reader.line_num, f"unreadable CSV: {exc}"))
    if header is None and not errors:
        errors.append((1, f"missing header: {','.join(columns)}"))
    return rows, errors


def _time(value: str, what: str) -> time:
    match = _TIME.match(value)
    if not match:
        raise ValueError(f"{what} must be a time like 06:00 or 22:30, got {value!r}")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{what} {value!r} is not a time of day (00:00 to 23:59)")
    return time(hour, minute, second)


def _date(value: str) -> date:
    try:
        if _DATE.match(value):
            return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"date {value!r} is not a calendar date") from None
    raise ValueError(f"date must be YYYY-MM-DD, got {value!r}")


def _minutes(value: str, what: str, *, optional: bool = False) -> int | None:
    if optional and value == "":
        return None
    if not _INT.match(value):
        empty = " (leave it empty for none)" if optional else ""
        raise ValueError(f"{what} must be a whole number of minutes{empty}, got {value!r}")
    return int(value)


def parse_shifts_csv(text: str) -> tuple[list[Shift], list[LineError]]:
    """Shifts from CSV text with the SHIFT_COLUMNS header, or ([], errors) if any line is bad.

    Times are local HH:MM (or HH:MM:SS); ``patrol_interval_min`` may be empty; ``tz`` is an IANA zone name.
    """
    rows, errors = _rows(text, SHIFT_COLUMNS)
    shifts: list[Shift] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        try:
            shift = Shift(
                shift_id=row["shift_id"],
                post_id=row["post_id"],
                site_id=row["site_id"],
                name=row["name"],
                start=_time(row["start"], "start"),
                end=_time(row["end"], "end"),
                checkin_window_min=_minutes(row["checkin_window_min"], "checkin_window_min"),
                late_grace_min=_minutes(row["late_grace_min"], "late_grace_min"),
                early_leave_grace_min=_minutes(row["early_leave_grace_min"], "early_leave_grace_min"),
                patrol_interval_min=_minutes(row["patrol_interval_min"], "patrol_interval_min", optional=True),
                tz=row["tz"],
            )
        except ValueError as exc:
            errors.append((line, str(exc)))
            continue
        if shift.shift_id in first_line:
            errors.append((line, f"shift {shift.shift_id} already defined on line {first_line[shift.shift_id]}"))
            continue
        first_line[shift.shift_id] = line
        shifts.append(shift)
    errors.sort()
    return ([], errors) if errors else (shifts, [])


def parse_roster_csv(text: str, shifts: Iterable[Shift]) -> tuple[list[RosterEntry], list[LineError]]:
    """Roster entries from CSV text with the ROSTER_COLUMNS header, or ([], errors) if any line is bad.

    ``shifts`` are the known shifts (already imported). Besides malformed dates and ids, a line is bad when
    its shift is unknown, it repeats an earlier line, or it books the guard on a shift overlapping another of
    theirs in this file.
    """
    known = {shift.shift_id: shift for shift in shifts}
    rows, errors = _rows(text, ROSTER_COLUMNS)
    entries: list[RosterEntry] = []
    first_line: dict[RosterEntry, int] = {}
    booked: dict[str, list[tuple[int, ShiftInstance]]] = {}
    for line, row in rows:
        try:
            entry = RosterEntry(guard_id=row["guard_id"], shift_id=row["shift_id"], date=_date(row["date"]))
            if entry.shift_id not in known:
                raise ValueError(f"unknown shift {entry.shift_id!r}")
            inst = instance(known[entry.shift_id], entry.date)
        except ValueError as exc:
            errors.append((line, str(exc)))
            continue
        if entry in first_line:
            errors.append((line, f"duplicate of line {first_line[entry]}"))
            continue
        clash = next(
            (
                (other_line, other)
                for other_line, other in booked.get(entry.guard_id, ())
                if other.start_utc < inst.end_utc and inst.start_utc < other.end_utc
            ),
            None,
        )
        if clash:
            other_line, other = clash
            errors.append(
                (
                    line,
                    f"guard {entry.guard_id} is already on {other.shift_id} {other.date} (line {other_line}), "
                    "which overlaps this shift",
                )
            )
            continue
        first_line[entry] = line
        booked.setdefault(entry.guard_id, []).append((line, inst))
        entries.append(entry)
    errors.sort()
    return ([], errors) if errors else (entries, [])
