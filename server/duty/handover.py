"""Handover between consecutive shifts on a post: was the post left unmanned at the changeover?"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from server.duty.records import DutyRecord, Finding, floor_minutes
from server.duty.shifts import ShiftInstance, zone

DEFAULT_HANDOVER_TOLERANCE_MIN = 5


def successions(instances: Iterable[ShiftInstance]) -> list[tuple[ShiftInstance, ShiftInstance]]:
    """(outgoing, incoming) pairs on each post.

    The incoming instance is the earliest one on the same post that starts after the outgoing one starts, no
    later than it ends, and runs past its end: 06-14 hands over to 14-22 (or to an overlapping 13-21), while a
    08-12 inside a 06-18 does not take the post over. A scheduled pause between shifts is no handover.
    """
    by_post: dict[tuple[str, str], set[ShiftInstance]] = defaultdict(set)
    for inst in instances:
        by_post[(inst.shift.site_id, inst.shift.post_id)].add(inst)
    pairs = []
    for post in sorted(by_post):
        ordered = sorted(by_post[post], key=lambda i: (i.start_utc, i.shift_id))
        for a in ordered:
            incoming = [b for b in ordered if a.start_utc < b.start_utc <= a.end_utc < b.end_utc]
            if incoming:
                pairs.append((a, incoming[0]))
    return pairs


def handover_findings(
    records: Iterable[DutyRecord],
    instances: Iterable[ShiftInstance],
    *,
    tolerance_min: int = DEFAULT_HANDOVER_TOLERANCE_MIN,
) -> list[Finding]:
    """A ``handover_gap`` finding wherever a post went unmanned for more than ``tolerance_min`` at a changeover.

    The gap runs from the last outgoing guard's check-out to the first incoming guard's check-in, or to the
    incoming shift's end when every incoming guard was absent. An outgoing guard who never checked out is
    taken to have stayed until the scheduled end (the missing check-out is its own finding); a changeover
    where no outgoing guard came at all, or the incoming side is still undecided, is not judged here.
    """
    if isinstance(tolerance_min, bool) or not isinstance(tolerance_min, int) or tolerance_min < 0:
        raise ValueError(f"tolerance_min must be a non-negative whole number of minutes, got {tolerance_min!r}")
    tolerance = timedelta(minutes=tolerance_min)
    by_duty: dict[tuple[str, date], list[DutyRecord]] = defaultdict(list)
    for record in records:
        if record.shift_id is not None:
            by_duty[(record.shift_id, record.date)].append(record)
    found = []
    for a, b in successions(instances):
        present = [r for r in by_duty.get((a.shift_id, a.date), ()) if r.first_in is not None]
        incoming = sorted(by_duty.get((b.shift_id, b.date), ()), key=lambda r: r.guard_id)
        if not present or not incoming:
            continue
        left = max(r.last_out or a.end_utc for r in present)
        arrivals = [r.first_in for r in incoming if r.first_in is not None]
        if arrivals:
            arrived = min(arrivals)
        elif all(r.status == "absent" for r in incoming):
            arrived = b.end_utc
        else:
            continue
        if arrived - left <= tolerance:
            continue
        tz = zone(b.shift.tz)
        outgoing_ids = ", ".join(sorted(r.guard_id for r in present))
        incoming_ids = ", ".join(r.guard_id for r in incoming)
        found.append(
            Finding(
                "handover_gap",
                b.shift.site_id,
                b.shift.post_id,
                incoming[0].guard_id if len(incoming) == 1 else None,
                b.shift_id,
                b.date,
                left,
                floor_minutes(arrived - left),
                f"post {b.shift.post_id} unmanned from {left.astimezone(tz):%Y-%m-%d %H:%M} to "
                f"{arrived.astimezone(tz):%Y-%m-%d %H:%M} ({floor_minutes(arrived - left)} min) between "
                f"{a.shift_id} ({outgoing_ids}) and {b.shift_id} ({incoming_ids})",
            )
        )
    return sorted(found, key=lambda f: (f.date, f.shift_id or "", f.key))
