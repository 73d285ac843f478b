"""Chart series from plain duty and check-in data: attendance per day, lateness by site, check-ins per hour."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# A rostered duty counts as attended when the guard punched at all; in_progress and unscheduled are not rostered
# outcomes yet (or at all), so they count on neither side.
ATTENDED = frozenset(
    {"present", "late", "early_leave", "late_and_early_leave", "missing_check_in", "missing_check_out"}
)
MISSED = frozenset({"absent"})
STATUSES_COUNTED = ATTENDED | MISSED
LATE = frozenset({"late", "late_and_early_leave"})


@dataclass(frozen=True)
class DayAttendance:
    day: date
    attended: int
    rostered: int

    @property
    def rate(self) -> float | None:
        """Share of rostered duties attended, None for a day without any."""
        return self.attended / self.rostered if self.rostered else None


@dataclass(frozen=True)
class SiteLateness:
    site_id: str
    late: int
    attended: int
    late_minutes: int

    @property
    def share(self) -> float | None:
        return self.late / self.attended if self.attended else None

    @property
    def average_minutes(self) -> float | None:
        return self.late_minutes / self.late if self.late else None


def attendance_per_day(records: Iterable[tuple[date, str]], first: date, last: date) -> list[DayAttendance]:
    """One entry per day from ``first`` to ``last``, from (day, status) of duty records; others are ignored."""
    attended: Counter[date] = Counter()
    rostered: Counter[date] = Counter()
    for day, status in records:
        if status in STATUSES_COUNTED:
            rostered[day] += 1
            attended[day] += status in ATTENDED
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [DayAttendance(day, attended[day], rostered[day]) for day in days]


def lateness_by_site(records: Iterable[tuple[str, str, int]]) -> list[SiteLateness]:
    """Per site, from (site_id, status, late_minutes): late duties among attended ones and their minutes."""
    late: Counter[str] = Counter()
    attended: Counter[str] = Counter()
    minutes: Counter[str] = Counter()
    for site_id, status, late_minutes in records:
        if status not in ATTENDED:
            continue
        attended[site_id] += 1
        if status in LATE:
            late[site_id] += 1
            minutes[site_id] += max(0, late_minutes)
    return [SiteLateness(s, late[s], attended[s], minutes[s]) for s in sorted(attended)]


def checkins_per_hour(local_times: Iterable[datetime]) -> list[int]:
    """How many check-ins fell in each hour of the (site-local) day, 0 to 23."""
    counts: defaultdict[int, int] = defaultdict(int)
    for moment in local_times:
        counts[moment.hour] += 1
    return [counts[hour] for hour in range(24)]
