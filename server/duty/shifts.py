"""Shifts, their dated instances as UTC intervals (DST-safe) and roster entries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTES_PER_DAY = 24 * 60
MAX_ID_LENGTH = 64
# A roster spans weeks, not decades: a longer range is almost certainly a typo in a date.
MAX_RANGE_DAYS = 400


@lru_cache(maxsize=128)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or a ValueError: callers then catch one exception type for every bad name."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"time zone must be an IANA name such as 'Asia/Shanghai', got {name!r}")
    try:
        return ZoneInfo(name)
    # ZoneInfo raises KeyError for unknown keys, ValueError for malformed ones, OSError for folders like 'Asia'.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None


def check_id(value: object, what: str) -> None:
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{what} must be a non-empty string of at most {MAX_ID_LENGTH} characters, got {value!r}")


def check_day(value: object, what: str) -> None:
    # datetime is a subclass of date; a datetime here would silently carry a time and a zone.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValueError(f"{what} must be a date, got {value!r}")


def check_aware(value: object, what: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")


def _check_minutes(value: object, what: str, *, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MINUTES_PER_DAY:
        raise ValueError(f"{what} must be a whole number of minutes from {minimum} to {MINUTES_PER_DAY}, got {value!r}")


@dataclass(frozen=True)
class Shift:
    """A daily shift on one post, in the site's local wall-clock time.

    ``end <= start`` means the shift ends the next day (22:00-06:00); ``end == start`` is a 24-hour shift.
    """

    shift_id: str
    post_id: str
    site_id: str
    name: str
    start: time
    end: time
    checkin_window_min: int = 60
    late_grace_min: int = 0
    early_leave_grace_min: int = 0
    patrol_interval_min: int | None = None
    tz: str = "UTC"

    def __post_init__(self) -> None:
        check_id(self.shift_id, "shift_id")
        check_id(self.post_id, "post_id")
        check_id(self.site_id, "site_id")
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        for value, what in ((self.start, "start"), (self.end, "end")):
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"{what} must be a local time of day without a zone, got {value!r}")
        _check_minutes(self.checkin_window_min, "checkin_window_min")
        _check_minutes(self.late_grace_min, "late_grace_min")
        _check_minutes(self.early_leave_grace_min, "early_leave_grace_min")
        if self.patrol_interval_min is not None:
            _check_minutes(self.patrol_interval_min, "patrol_interval_min", minimum=1)
        zone(self.tz)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True)
class ShiftInstance:
    """One shift on one day: ``date`` is the local date it starts; both ends are aware UTC datetimes."""

    shift: Shift
    date: date
    start_utc: datetime
    end_utc: datetime

    def __post_init__(self) -> None:
        check_day(self.date, "date")
        for value, what in ((self.start_utc, "start_utc"), (self.end_utc, "end_utc")):
            check_aware(value, what)
            if value.utcoffset() != timedelta(0):
                raise ValueError(f"{what} must be in UTC, got {value.isoformat()}")
        if self.end_utc <= self.start_utc:
            raise ValueError(f"shift {self.shift.shift_id} on {self.date} must end after it starts")

    @property
    def shift_id(self) -> str:
        return self.shift.shift_id

    @property
    def length(self) -> timedelta:
        return self.end_utc - self.start_utc


@dataclass(frozen=True)
class RosterEntry:
    """Guard ``guard_id`` works shift ``shift_id`` starting on local date ``date``."""

    guard_id: str
    shift_id: str
    date: date

    def __post_init__(self) -> None:
        check_id(self.guard_id, "guard_id")
        check_id(self.shift_id, "shift_id")
        check_day(self.date, "date")


def _local_to_utc(day: date, moment: time, tz: ZoneInfo) -> datetime:
    # fold=0: a wall time in the spring-forward gap reads with the offset before the gap (02:30 -> 03:30 CEST),
    # an ambiguous autumn time is its first occurrence; both as Python and most HR systems do.
    return datetime.combine(day, moment.replace(fold=0), tzinfo=tz).astimezone(UTC)


def instance(shift: Shift, day: date) -> ShiftInstance:
    """``shift`` on the local date ``day``; its length is real elapsed time (7 h on a spring-forward night)."""
    check_day(day, "day")
    tz = zone(shift.tz)
    end_day = day + timedelta(days=1) if shift.crosses_midnight else day
    start_utc = _local_to_utc(day, shift.start, tz)
    end_utc = _local_to_utc(end_day, shift.end, tz)
    if end_utc <= start_utc:
        # Only a shift lying wholly inside a daylight-saving gap gets here; it cannot be worked.
        raise ValueError(f"shift {shift.shift_id} on {day} has no length in {shift.tz} (daylight-saving gap)")
    return ShiftInstance(shift, day, start_utc, end_utc)


def _days(first_date: date, last_date: date) -> list[date]:
    check_day(first_date, "first_date")
    check_day(last_date, "last_date")
    if last_date < first_date:
        raise ValueError(f"last_date {last_date} is before first_date {first_date}")
    count = (last_date - first_date).days + 1
    if count > MAX_RANGE_DAYS:
        raise ValueError(f"{count} days from {first_date} to {last_date}; at most {MAX_RANGE_DAYS} at once")
    return [first_date + timedelta(days=n) for n in range(count)]


def instances(shift: Shift, first_date: date, last_date: date) -> list[ShiftInstance]:
    """Every instance of ``shift`` starting on a local date from ``first_date`` to ``last_date`` inclusive."""
    return [instance(shift, day) for day in _days(first_date, last_date)]


def all_instances(shifts: Iterable[Shift], first_date: date, last_date: date) -> list[ShiftInstance]:
    """Instances of several shifts, ordered by start then shift id."""
    shifts = list(shifts)
    seen: set[str] = set()
    for shift in shifts:
        if shift.shift_id in seen:
            raise ValueError(f"shift id {shift.shift_id!r} appears twice")
        seen.add(shift.shift_id)
    days = _days(first_date, last_date)
    found = [instance(shift, day) for shift in shifts for day in days]
    return sorted(found, key=lambda i: (i.start_utc, i.shift_id))
