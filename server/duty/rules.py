"""Duty rules: assign punches to rostered shifts and derive each guard's duty record at a given moment."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise

from server.duty.handover import handover_findings
from server.duty.records import (
    STATUSES,
    DutyRecord,
    Finding,
    Punch,
    ceil_minutes,
    floor_minutes,
    local_text,
    opening_and_close,
)
from server.duty.shifts import RosterEntry, ShiftInstance, check_aware
from server.duty.visits import site_zones, unscheduled_records

__all__ = [
    "DEFAULT_CHECKOUT_WINDOW_MIN",
    "STATUSES",
    "Assignment",
    "DutyRecord",
    "Finding",
    "Punch",
    "assign_punches",
    "duty_records",
    "handover_findings",
    "record_findings",
    "unique_punches",
]

DEFAULT_CHECKOUT_WINDOW_MIN = 240
# Unrostered punches further apart than this are separate visits.
DEFAULT_VISIT_GAP_MIN = 240

DutyKey = tuple[str, str, date]  # (guard_id, shift_id, date)


@dataclass(frozen=True)
class Assignment:
    """Punches per rostered duty (every duty present, maybe empty) and those matching no duty, in time order."""

    duties: Mapping[DutyKey, tuple[Punch, ...]]
    unscheduled: tuple[Punch, ...]


def unique_punches(punches: Iterable[Punch]) -> list[Punch]:
    """Punches in time order with repeated event ids dropped (a replayed event is the same punch)."""
    kept: dict[str, Punch] = {}
    for punch in sorted(punches, key=lambda p: (p.event_id, p.order_key)):
        kept.setdefault(punch.event_id, punch)
    return sorted(kept.values(), key=lambda p: p.order_key)


def _rostered(instances: Iterable[ShiftInstance], roster: Iterable[RosterEntry]) -> dict[DutyKey, ShiftInstance]:
    by_day: dict[tuple[str, date], ShiftInstance] = {}
    for inst in instances:
        known = by_day.setdefault((inst.shift_id, inst.date), inst)
        if known != inst:
            raise ValueError(f"two different instances of shift {inst.shift_id} on {inst.date}")
    duties: dict[DutyKey, ShiftInstance] = {}
    for entry in roster:
        inst = by_day.get((entry.shift_id, entry.date))
        if inst is None:
            raise ValueError(
                f"roster entry {entry.guard_id} / {entry.shift_id} / {entry.date} has no shift instance; "
                "pass instances covering every rostered shift and date"
            )
        duties[(entry.guard_id, entry.shift_id, entry.date)] = inst
    return duties


def _preference(punch: Punch, inst: ShiftInstance) -> tuple:
    # Between a guard's overlapping windows (a double shift 06-14 + 14-22), a check-in goes to the nearest start
    # and a check-out to the nearest end, so the 14:00 check-out closes the first shift, not the second; a patrol
    # goes to the shift it falls inside. Remaining ties: nearest start, then earliest start, then shift id.
    to_start = abs(punch.at - inst.start_utc)
    if punch.type == "check_in":
        primary = to_start
    elif punch.type == "check_out":
        primary = abs(punch.at - inst.end_utc)
    else:
        primary = max(inst.start_utc - punch.at, punch.at - inst.end_utc, timedelta(0))
    return (primary, to_start, inst.start_utc, inst.shift_id)


def _check_window(minutes: object, what: str = "checkout_window_min") -> timedelta:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
        raise ValueError(f"{what} must be a non-negative whole number of minutes, got {minutes!r}")
    return timedelta(minutes=minutes)


def _assign(duties: Mapping[DutyKey, ShiftInstance], punches: Iterable[Punch], after: timedelta) -> Assignment:
    by_guard: dict[str, list[tuple[DutyKey, ShiftInstance]]] = defaultdict(list)
    for key, inst in duties.items():
        by_guard[key[0]].append((key, inst))
    assigned: dict[DutyKey, list[Punch]] = {key: [] for key in duties}
    unscheduled: list[Punch] = []
    for punch in unique_punches(punches):
        candidates = [
            (key, inst)
            for key, inst in by_guard.get(punch.guard_id, ())
            if inst.shift.site_id == punch.site_id
            and inst.start_utc - timedelta(minutes=inst.shift.checkin_window_min) <= punch.at <= inst.end_utc + after
        ]
        if candidates:
            key, _ = min(candidates, key=lambda c: _preference(punch, c[1]))
            assigned[key].append(punch)
        else:
            unscheduled.append(punch)
    return Assignment({key: tuple(found) for key, found in assigned.items()}, tuple(unscheduled))


def assign_punches(
    instances: Iterable[ShiftInstance],
    roster: Iterable[RosterEntry],
    punches: Iterable[Punch],
    *,
    checkout_window_min: int = DEFAULT_CHECKOUT_WINDOW_MIN,
) -> Assignment:
    """Give each punch to the guard's rostered instance, at the punch's site, whose window contains it.

    An instance's window is [start - checkin_window, end + checkout_window], both ends included. A punch
    at another site than the rostered shift's, or outside every window, is unscheduled.
    """
    return _assign(_rostered(instances, roster), punches, _check_window(checkout_window_min))


def _patrol_findings(inst: ShiftInstance, guard_id: str, punches: Sequence[Punch], now: datetime) -> list[Finding]:
    shift = inst.shift
    opener, last_out = opening_and_close(punches)
    if shift.patrol_interval_min is None or opener is None:
        return []
    # Patrols are owed on the scheduled shift while the guard is there: not before the start (an early check-in),
    # not after leaving (that is an early leave), not in overtime, and not in the future.
    watch_start = max(opener.at, inst.start_utc)
    watch_end = min(last_out or inst.end_utc, inst.end_utc, now)
    if watch_end <= watch_start:
        return []
    marks = [watch_start, *(p.at for p in punches if watch_start < p.at < watch_end), watch_end]
    limit = timedelta(minutes=shift.patrol_interval_min + shift.late_grace_min)
    return [
        Finding(
            "missed_patrol",
            shift.site_id,
            shift.post_id,
            guard_id,
            shift.shift_id,
            inst.date,
            a,
            floor_minutes(b - a),
            f"no punch on post from {local_text(a, shift.tz)} to {local_text(b, shift.tz)} "
            f"({floor_minutes(b - a)} min); one is due every {shift.patrol_interval_min} min",
        )
        for a, b in pairwise(marks)
        if b - a > limit
    ]


def _scheduled_record(
    key: DutyKey, inst: ShiftInstance, punches: Sequence[Punch], now: datetime, checkout_window: timedelta
) -> DutyRecord:
    shift = inst.shift
    opener, last_out = opening_and_close(punches)
    first_in = opener.at if opener else None
    start, end = inst.start_utc, inst.end_utc
    late = first_in is not None and first_in > start + timedelta(minutes=shift.late_grace_min)
    early = last_out is not None and last_out < end - timedelta(minutes=shift.early_leave_grace_min)
    if first_in is None:
        # Nothing (absent) or only check-outs (the guard was there at some point but never checked in).
        status = ("absent" if last_out is None else "missing_check_in") if now > end else "in_progress"
    elif last_out is None:
        # A check-out may still arrive until the check-out window closes.
        status = "missing_check_out" if now > end + checkout_window else "in_progress"
    elif now <= end:
        # Checked out before the end, but the guard may still come back.
        status = "in_progress"
    else:
        status = {(False, False): "present", (True, False): "late", (False, True): "early_leave"}.get(
            (late, early), "late_and_early_leave"
        )
    worked = floor_minutes(last_out - first_in) if first_in and last_out else 0
    # Overtime is time after the scheduled end only: arriving early within the check-in window is not overtime.
    overtime = floor_minutes(last_out - max(end, first_in)) if first_in and last_out and last_out > end else 0
    return DutyRecord(
        guard_id=key[0],
        site_id=shift.site_id,
        post_id=shift.post_id,
        shift_id=shift.shift_id,
        date=inst.date,
        status=status,
        first_in=first_in,
        last_out=last_out,
        minutes_worked=worked,
        overtime_minutes=overtime,
        # Counted from the scheduled start (the time the post went without this guard), once beyond the grace.
        late_minutes=ceil_minutes(first_in - start) if late and first_in else 0,
        early_leave_minutes=ceil_minutes(end - last_out) if early and last_out else 0,
        check_in_method=opener.method if opener else None,
        check_in_distance=opener.distance if opener else None,
        punches=tuple(p.event_id for p in punches),
        patrol_findings=tuple(_patrol_findings(inst, key[0], punches, now)),
    )


def duty_records(
    instances: Iterable[ShiftInstance],
    roster: Iterable[RosterEntry],
    punches: Iterable[Punch],
    now: datetime,
    *,
    checkout_window_min: int = DEFAULT_CHECKOUT_WINDOW_MIN,
    visit_gap_min: int = DEFAULT_VISIT_GAP_MIN,
    site_tz: Mapping[str, str] | None = None,
) -> list[DutyRecord]:
    """The duty log as of ``now``: one record per rostered guard and shift instance, one per unscheduled visit.

    The first check-in (else the first patrol) and the last check-out after it bound the worked interval.
    Once final, a record is late past start + late grace, early_leave before end - early-leave grace (both
    limits themselves are on time), late_and_early_leave for both, else present; absent with no punch,
    missing_check_in with only check-outs, missing_check_out with no check-out. A record stays in_progress
    while a punch could still change it: until the end, and for a guard who has not checked out until the
    end + check-out window. Repeated roster entries count once. ``site_tz`` gives the zone of sites without
    shifts (to date unscheduled visits locally); otherwise a site has its shifts' zone, or UTC.
    """
    check_aware(now, "now")
    instances = list(instances)
    window = _check_window(checkout_window_min)
    visit_gap = _check_window(visit_gap_min, "visit_gap_min")
    duties = _rostered(instances, roster)
    assignment = _assign(duties, punches, window)
    records = [_scheduled_record(key, duties[key], found, now, window) for key, found in assignment.duties.items()]
    records += unscheduled_records(assignment.unscheduled, site_zones(instances, site_tz), visit_gap)
    return sorted(records, key=lambda r: r.sort_key)


def record_findings(records: Iterable[DutyRecord]) -> list[Finding]:
    """The exceptions in a duty log: late, early leave, absent, missing punches, unscheduled, missed patrols.

    Only final records raise them, except missed patrols, which a live view needs at once (a gap still open
    at ``now`` is reported up to ``now``; its key is its start, so storing it again is a no-op).
    """
    found: list[Finding] = []
    for r in records:
        base = (r.site_id, r.post_id, r.guard_id, r.shift_id, r.date)
        if r.status == "in_progress":
            # Not yet: a replayed punch from an offline terminal could still undo it. Live views read the record.
            found.extend(r.patrol_findings)
            continue
        if r.late_minutes:
            found.append(Finding("late", *base, r.first_in, r.late_minutes, f"{r.late_minutes} min late"))
        if r.early_leave_minutes:
            detail = f"left {r.early_leave_minutes} min early"
            found.append(Finding("early_leave", *base, r.last_out, r.early_leave_minutes, detail))
        if r.status in ("absent", "missing_check_in", "missing_check_out", "unscheduled"):
            at = r.first_in or r.last_out
            detail = {
                "absent": "no punch for the shift",
                "missing_check_in": "checked out without a check-in",
                "missing_check_out": "checked in, never checked out",
                "unscheduled": f"on site without a rostered shift ({len(r.punches)} punches)",
            }[r.status]
            found.append(Finding(r.status, *base, at, r.minutes_worked if r.status == "unscheduled" else 0, detail))
        found.extend(r.patrol_findings)
    return sorted(found, key=lambda f: (f.date, f.shift_id or "", f.guard_id or "", f.key))
