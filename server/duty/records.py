"""Plain values the duty engine reads and writes: punches, duty records and findings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, get_args

from server.duty.shifts import check_aware, check_day, check_id, zone

PunchType = Literal["check_in", "check_out", "patrol"]
PUNCH_TYPES: tuple[str, ...] = get_args(PunchType)

Status = Literal[
    "present",
    "late",
    "early_leave",
    "late_and_early_leave",
    "absent",
    "missing_check_in",
    "missing_check_out",
    "unscheduled",
    "in_progress",
]
STATUSES: tuple[str, ...] = get_args(Status)

FindingKind = Literal[
    "late",
    "early_leave",
    "absent",
    "missing_check_in",
    "missing_check_out",
    "unscheduled",
    "missed_patrol",
    "handover_gap",
]
FINDING_KINDS: tuple[str, ...] = get_args(FindingKind)


@dataclass(frozen=True)
class Punch:
    """One accepted check-in, check-out or patrol event; ``at`` is already clock-corrected by the caller."""

    event_id: str
    guard_id: str
    site_id: str
    device_id: str
    type: str
    at: datetime
    method: str = "face"
    distance: float | None = None
    liveness: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.event_id, str) or not self.event_id:
            raise ValueError(f"event_id must be a non-empty string, got {self.event_id!r}")
        check_id(self.guard_id, "guard_id")
        check_id(self.site_id, "site_id")
        check_id(self.device_id, "device_id")
        if self.type not in PUNCH_TYPES:
            raise ValueError(f"punch type must be one of {', '.join(PUNCH_TYPES)}, got {self.type!r}")
        check_aware(self.at, "at")
        # Stored in UTC so equal instants are equal values and sort the same whatever zone the caller used.
        object.__setattr__(self, "at", self.at.astimezone(UTC))

    @property
    def order_key(self) -> tuple:
        """Total order over punches, so any input order yields the same result."""
        return (
            self.at,
            PUNCH_TYPES.index(self.type),
            self.event_id,
            self.guard_id,
            self.site_id,
            self.device_id,
            self.method,
            self.distance is None,
            self.distance or 0.0,
            self.liveness or "",
        )


@dataclass(frozen=True)
class Finding:
    """An exception a supervisor should see (TimeTrex style); ``key`` is stable, for idempotent storage.

    ``at`` is when it began (the late check-in, the start of an unmanned gap), None for an absence;
    ``minutes`` is its size (minutes late, gap length), 0 where size means nothing.
    """

    kind: str
    site_id: str
    post_id: str | None
    guard_id: str | None
    shift_id: str | None
    date: date
    at: datetime | None
    minutes: int
    detail: str

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS:
            raise ValueError(f"finding kind must be one of {', '.join(FINDING_KINDS)}, got {self.kind!r}")
        check_day(self.date, "date")
        if self.at is not None:
            check_aware(self.at, "at")

    @property
    def key(self) -> str:
        at = self.at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") if self.at else "-"
        return ":".join(
            (self.kind, self.site_id, self.shift_id or "-", self.date.isoformat(), self.guard_id or "-", at)
        )


@dataclass(frozen=True)
class DutyRecord:
    """One guard on one shift instance (or one unscheduled visit, with ``shift_id`` and ``post_id`` None).

    ``first_in``/``last_out`` bound the worked interval; ``punches`` are the event ids of every punch assigned
    here, in time order (including ones that bound nothing, such as a check-out before the first check-in).
    ``check_in_method``/``check_in_distance`` come from the punch that opened the interval. Minutes are whole
    minutes: penalties (late, early leave) count any started minute, credits (worked, overtime) only
    completed ones, so rounding never favours the record.
    """

    guard_id: str
    site_id: str
    post_id: str | None
    shift_id: str | None
    date: date
    status: str
    first_in: datetime | None
    last_out: datetime | None
    minutes_worked: int
    overtime_minutes: int
    late_minutes: int
    early_leave_minutes: int
    check_in_method: str | None
    check_in_distance: float | None
    punches: tuple[str, ...]
    patrol_findings: tuple[Finding, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    @property
    def sort_key(self) -> tuple:
        # Unscheduled visits sort after the rostered shifts of their day.
        seen = self.first_in or self.last_out or datetime.min.replace(tzinfo=UTC)
        return (self.date, self.shift_id is None, self.shift_id or "", self.guard_id, self.site_id, seen, self.punches)


MINUTE = timedelta(minutes=1)


# Integer timedelta division: exact to the microsecond, unlike total_seconds() / 60.
def floor_minutes(span: timedelta) -> int:
    return max(0, span // MINUTE)


def ceil_minutes(span: timedelta) -> int:
    return max(0, -(-span // MINUTE))


def local_text(moment: datetime, tz: str) -> str:
    return moment.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M")


def opening_and_close(punches: Sequence[Punch]) -> tuple[Punch | None, datetime | None]:
    """The punch that opens the worked interval and the time that closes it, from punches in time order."""
    # The first check-in, else the first patrol: the guard was evidently there. Check-outs before it close nothing.
    opener = next((p for p in punches if p.type == "check_in"), None)
    opener = opener or next((p for p in punches if p.type == "patrol"), None)
    outs = [p.at for p in punches if p.type == "check_out" and (opener is None or p.at >= opener.at)]
    return opener, (outs[-1] if outs else None)
