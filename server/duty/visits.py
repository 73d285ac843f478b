"""Unscheduled presence: group punches that match no rostered shift into visits, one record each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from server.duty.records import DutyRecord, Punch, floor_minutes, opening_and_close
from server.duty.shifts import ShiftInstance, zone


def _visits(punches: Sequence[Punch], gap: timedelta) -> list[list[Punch]]:
    by_place: dict[tuple[str, str], list[Punch]] = defaultdict(list)
    for punch in punches:
        by_place[(punch.guard_id, punch.site_id)].append(punch)
    visits: list[list[Punch]] = []
    for place in sorted(by_place):
        current: list[Punch] = []
        for punch in by_place[place]:
            # A long silence, or coming back after a check-out, starts a new visit.
            back = bool(current) and current[-1].type == "check_out" and punch.type != "check_out"
            if current and (punch.at - current[-1].at > gap or back):
                visits.append(current)
                current = []
            current.append(punch)
        visits.append(current)
    return visits


def _record(visit: Sequence[Punch], tz: str) -> DutyRecord:
    opener, last_out = opening_and_close(visit)
    first_in = opener.at if opener else None
    return DutyRecord(
        guard_id=visit[0].guard_id,
        site_id=visit[0].site_id,
        post_id=None,
        shift_id=None,
        date=visit[0].at.astimezone(zone(tz)).date(),
        status="unscheduled",
        first_in=first_in,
        last_out=last_out,
        # Reported as worked time, never as overtime: paying for unrostered presence is a supervisor's call.
        minutes_worked=floor_minutes(last_out - first_in) if first_in and last_out else 0,
        overtime_minutes=0,
        late_minutes=0,
        early_leave_minutes=0,
        check_in_method=opener.method if opener else None,
        check_in_distance=opener.distance if opener else None,
        punches=tuple(p.event_id for p in visit),
    )


def site_zones(instances: Iterable[ShiftInstance], site_tz: Mapping[str, str] | None) -> dict[str, str]:
    """Site id -> IANA zone, from the sites' shifts, overridden by ``site_tz``."""
    zones: dict[str, str] = {}
    for inst in sorted(instances, key=lambda i: i.shift_id):
        zones.setdefault(inst.shift.site_id, inst.shift.tz)
    zones.update(site_tz or {})
    return zones


def unscheduled_records(punches: Sequence[Punch], zones: Mapping[str, str], gap: timedelta) -> list[DutyRecord]:
    """One ``unscheduled`` record per visit, dated by the site's local date (UTC for a site of unknown zone)."""
    return [_record(visit, zones.get(visit[0].site_id, "UTC")) for visit in _visits(punches, gap)]
