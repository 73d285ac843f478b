"""A deterministic scripted month of guard duty: company, roster, punches and the duty log they must produce."""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from server.duty.records import Punch, ceil_minutes, floor_minutes
from server.duty.rosters_csv import ROSTER_COLUMNS, SHIFT_COLUMNS
from server.duty.shifts import RosterEntry, Shift, ShiftInstance, all_instances, zone

# (suffix, start, end): a day of three 8-hour shifts on one gate post; the night one crosses midnight.
SHIFT_PATTERN = (("day", time(6), time(14)), ("eve", time(14), time(22)), ("night", time(22), time(6)))
CHECKIN_WINDOW_MIN = 60
LATE_GRACE_MIN = 10
EARLY_LEAVE_GRACE_MIN = 10
NIGHT_PATROL_MIN = 120
HANDOVER_TOLERANCE_MIN = 5

# What the script makes of one rostered guard-shift, with its weight; missed_patrol only on patrolled shifts.
OUTCOME_WEIGHTS = {
    "on_time": 50,
    "late": 10,
    "early_leave": 8,
    "late_and_early_leave": 4,
    "absent": 6,
    "missing_check_out": 6,
    "overtime": 12,
    "missed_patrol": 8,
}
# The duty status each outcome must produce once the month is over.
OUTCOME_STATUS = {o: o for o in OUTCOME_WEIGHTS} | {
    "on_time": "present",
    "overtime": "present",
    "missed_patrol": "present",
}
VISIT_PROBABILITY = 0.3  # per day: one guard drops in at another site, which is an unscheduled visit


@dataclass(frozen=True)
class Plan:
    """What the script decided for one rostered guard-shift: its outcome and the planned punch times (UTC)."""

    guard_id: str
    shift_id: str
    date: date
    outcome: str
    check_in: datetime | None
    check_out: datetime | None
    patrols: tuple[datetime, ...]


@dataclass(frozen=True)
class Expected:
    """The duty log the engine must produce for the month (``now`` after its last check-out window)."""

    statuses: Mapping[str, int]  # status -> number of records, unscheduled visits included
    by_duty: Mapping[tuple[str, str, date], str]  # (guard_id, shift_id, date) -> status
    minutes_worked: int  # over every record, unscheduled visits included
    overtime_minutes: int
    late_minutes: int
    early_leave_minutes: int
    missed_patrols: int
    handover_gaps: int  # with a tolerance of HANDOVER_TOLERANCE_MIN
    handover_gap_minutes: int


@dataclass(frozen=True)
class Month:
    """A scripted month; ``punches`` are plain dicts (see ``scripted_month``) in time order."""

    seed: int
    first_date: date
    days: int
    tz: str
    now: datetime
    sites: tuple[str, ...]
    devices: Mapping[str, str]  # site_id -> the one gate terminal's device_id
    guards: Mapping[str, str]  # guard_id -> home site_id
    shifts: tuple[Shift, ...]
    instances: tuple[ShiftInstance, ...]
    roster: tuple[RosterEntry, ...]
    plans: tuple[Plan, ...]
    punches: tuple[dict[str, Any], ...]
    expected: Expected

    @property
    def last_date(self) -> date:
        return self.first_date + timedelta(days=self.days - 1)

    def shifts_csv(self) -> str:
        """The shifts in the import format of ``server.duty.rosters_csv``."""
        lines = [",".join(SHIFT_COLUMNS)]
        for s in self.shifts:
            patrol = "" if s.patrol_interval_min is None else str(s.patrol_interval_min)
            lines.append(
                f"{s.shift_id},{s.post_id},{s.site_id},{s.name},{s.start:%H:%M},{s.end:%H:%M},"
                f"{s.checkin_window_min},{s.late_grace_min},{s.early_leave_grace_min},{patrol},{s.tz}"
            )
        return "\n".join(lines) + "\n"

    def roster_csv(self) -> str:
        """The roster in the import format of ``server.duty.rosters_csv``."""
        lines = [",".join(ROSTER_COLUMNS)] + [f"{e.date.isoformat()},{e.shift_id},{e.guard_id}" for e in self.roster]
        return "\n".join(lines) + "\n"


def to_punch(punch: Mapping[str, Any]) -> Punch:
    """One punch dict of a ``Month`` as the engine's ``Punch`` (the dict's keys are its field names)."""
    return Punch(**punch)


def to_punches(punches: Iterable[Mapping[str, Any]]) -> list[Punch]:
    return [to_punch(p) for p in punches]


def _company(sites: int, guards_per_site: int, tz: str) -> tuple[list[str], dict[str, list[str]], list[Shift]]:
    site_ids = [f"site-{n:02d}" for n in range(1, sites + 1)]
    staff = {
        site: [f"G-{1000 + s * guards_per_site + g + 1}" for g in range(guards_per_site)]
        for s, site in enumerate(site_ids)
    }
    shifts = [
        Shift(
            shift_id=f"{site}-{suffix}",
            post_id=f"{site}-gate",
            site_id=site,
            name=f"{suffix.title()} {start:%H}-{end:%H}",
            start=start,
            end=end,
            checkin_window_min=CHECKIN_WINDOW_MIN,
            late_grace_min=LATE_GRACE_MIN,
            early_leave_grace_min=EARLY_LEAVE_GRACE_MIN,
            patrol_interval_min=NIGHT_PATROL_MIN if suffix == "night" else None,
            tz=tz,
        )
        for site in site_ids
        for suffix, start, end in SHIFT_PATTERN
    ]
    return site_ids, staff, shifts


def _seconds(rng: random.Random, low_s: int, high_s: int) -> timedelta:
    return timedelta(seconds=rng.randint(low_s, high_s))


def _plan(rng: random.Random, guard_id: str, inst: ShiftInstance) -> Plan:
    shift = inst.shift
    outcomes = [o for o in OUTCOME_WEIGHTS if o != "missed_patrol" or shift.patrol_interval_min]
    outcome = rng.choices(outcomes, weights=[OUTCOME_WEIGHTS[o] for o in outcomes])[0]
    start, end = inst.start_utc, inst.end_utc
    late, early = shift.late_grace_min * 60, shift.early_leave_grace_min * 60
    # On time: mostly early, one in five within the grace (up to exactly its limit); the same for leaving.
    check_in = start + (_seconds(rng, 0, late) if rng.random() < 0.2 else -_seconds(rng, 0, 20 * 60))
    check_out: datetime | None = end + (-_seconds(rng, 0, early) if rng.random() < 0.2 else _seconds(rng, 0, 5 * 60))
    if outcome in ("late", "late_and_early_leave"):
        check_in = start + _seconds(rng, late + 1, late + 90 * 60)
    if outcome in ("early_leave", "late_and_early_leave"):
        check_out = end - _seconds(rng, early + 1, early + 120 * 60)
    if outcome == "overtime":
        check_out = end + _seconds(rng, 30 * 60, 180 * 60)
    if outcome == "missing_check_out":
        check_out = None
    if outcome == "absent":
        return Plan(guard_id, shift.shift_id, inst.date, outcome, None, None, ())
    patrols: list[datetime] = []
    if shift.patrol_interval_min:
        # Rounds every 80-110 min while on post, so no gap reaches the 120 min interval (+ grace).
        moment, watch_end = max(check_in, start), min(check_out or end, end)
        while (moment := moment + _seconds(rng, 80 * 60, 110 * 60)) < watch_end:
            patrols.append(moment)
        if outcome == "missed_patrol":
            # Not the last round: the gap after it may be short, and the merged gap must exceed the limit.
            del patrols[rng.randrange(len(patrols) - 1)]
    return Plan(guard_id, shift.shift_id, inst.date, outcome, check_in, check_out, tuple(patrols))


def _punch(rng: random.Random, guard_id: str, site: str, device: str, kind: str, at: datetime) -> dict[str, Any]:
    method = rng.choices(("face", "card"), weights=(4, 1))[0]
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "guard_id": guard_id,
        "site_id": site,
        "device_id": device,
        "type": kind,
        "at": at.astimezone(UTC),
        "method": method,
        "distance": round(rng.uniform(0.2, 0.45), 3) if method == "face" else None,
        "liveness": "pass" if method == "face" else None,
    }


def _handover_gaps(insts: Mapping[tuple[str, date], ShiftInstance], plans: Iterable[Plan]) -> list[int]:
    by_duty = {(p.shift_id, p.date): p for p in plans}
    ordered = sorted(insts.values(), key=lambda i: (i.shift.post_id, i.start_utc))
    gaps = []
    for a, b in zip(ordered, ordered[1:], strict=False):
        outgoing, incoming = by_duty[(a.shift_id, a.date)], by_duty[(b.shift_id, b.date)]
        if a.shift.post_id != b.shift.post_id or b.start_utc != a.end_utc or outgoing.check_in is None:
            continue
        left, arrived = outgoing.check_out or a.end_utc, incoming.check_in or b.end_utc
        if arrived - left > timedelta(minutes=HANDOVER_TOLERANCE_MIN):
            gaps.append(floor_minutes(arrived - left))
    return gaps


def _expected(insts: Mapping[tuple[str, date], ShiftInstance], plans: list[Plan], visits: list[int]) -> Expected:
    worked = [(p, insts[(p.shift_id, p.date)]) for p in plans if p.check_in and p.check_out]
    late = [(p, insts[(p.shift_id, p.date)]) for p in plans if p.outcome in ("late", "late_and_early_leave")]
    early = [(p, i) for p, i in worked if p.outcome in ("early_leave", "late_and_early_leave")]
    by_duty = {(p.guard_id, p.shift_id, p.date): OUTCOME_STATUS[p.outcome] for p in plans}
    gaps = _handover_gaps(insts, plans)
    return Expected(
        statuses=dict(sorted((Counter(by_duty.values()) + Counter({"unscheduled": len(visits)})).items())),
        by_duty=by_duty,
        minutes_worked=sum(floor_minutes(p.check_out - p.check_in) for p, _ in worked) + sum(visits),
        overtime_minutes=sum(floor_minutes(p.check_out - max(i.end_utc, p.check_in)) for p, i in worked),
        late_minutes=sum(ceil_minutes(p.check_in - i.start_utc) for p, i in late),
        early_leave_minutes=sum(ceil_minutes(i.end_utc - p.check_out) for p, i in early),
        missed_patrols=sum(p.outcome == "missed_patrol" for p in plans),
        handover_gaps=len(gaps),
        handover_gap_minutes=sum(gaps),
    )


def scripted_month(
    seed: int = 20260401,
    *,
    first_date: date = date(2026, 4, 1),
    days: int = 30,
    sites: int = 5,
    guards_per_site: int = 10,
    tz: str = "Asia/Shanghai",
) -> Month:
    """A company of ``sites * guards_per_site`` guards, 3 shifts a day per site, ``days`` days from ``first_date``.

    Each site has one gate post with the shifts of SHIFT_PATTERN (the night one patrolled every 120 min) and
    one terminal; its guards rotate through the shifts, one per shift. ``random.Random(seed)`` decides each
    guard-shift's outcome (OUTCOME_WEIGHTS) and the exact punch times, and about every third day one guard
    drops in at another site (an unscheduled visit). The same arguments always give the same month.

    Each punch dict has ``event_id`` (uuid string), ``guard_id``, ``site_id``, ``device_id``, ``type``
    (check_in, check_out or patrol), ``at`` (aware UTC datetime), ``method`` (face or card), ``distance``
    (float for face, None for card) and ``liveness`` ("pass" for face, None for card).
    """
    if guards_per_site < 4 or sites < 2:
        raise ValueError("the rotation needs 4 guards per site, and unscheduled visits a second site")
    rng = random.Random(seed)
    site_ids, staff, shifts = _company(sites, guards_per_site, tz)
    insts = {(i.shift_id, i.date): i for i in all_instances(shifts, first_date, first_date + timedelta(days - 1))}
    devices = {site: f"{site}-gate-1" for site in site_ids}
    roster, plans, punches, visits = [], [], [], []
    for n, site, (slot, (suffix, *_)) in itertools.product(range(days), site_ids, enumerate(SHIFT_PATTERN)):
        inst = insts[(f"{site}-{suffix}", first_date + timedelta(days=n))]
        # Rotating through the site's guards three at a time keeps every guard's shifts days apart.
        guard_id = staff[site][(3 * n + slot) % guards_per_site]
        roster.append(RosterEntry(guard_id, inst.shift_id, inst.date))
        plans.append(plan := _plan(rng, guard_id, inst))
        moments = [("check_in", plan.check_in), ("check_out", plan.check_out), *(("patrol", p) for p in plan.patrols)]
        punches += [_punch(rng, guard_id, site, devices[site], kind, at) for kind, at in moments if at]
    for n in range(days):
        if rng.random() < VISIT_PROBABILITY:
            home = rng.choice(site_ids)
            guard_id, site = rng.choice(staff[home]), rng.choice([s for s in site_ids if s != home])
            # Between 10:00 and 18:00 local: clear of every zone's daylight-saving change.
            arrive = datetime.combine(first_date + timedelta(days=n), time(10), tzinfo=zone(tz))
            arrive = (arrive + _seconds(rng, 0, 8 * 3600)).astimezone(UTC)
            leave = arrive + _seconds(rng, 15 * 60, 90 * 60)
            visits.append(floor_minutes(leave - arrive))
            punches += [
                _punch(rng, guard_id, site, devices[site], k, t)
                for k, t in (("check_in", arrive), ("check_out", leave))
            ]
    return Month(
        seed=seed,
        first_date=first_date,
        days=days,
        tz=tz,
        now=max(i.end_utc for i in insts.values()) + timedelta(days=1),
        sites=tuple(site_ids),
        devices=devices,
        guards={g: site for site, ids in staff.items() for g in ids},
        shifts=tuple(shifts),
        instances=tuple(sorted(insts.values(), key=lambda i: (i.start_utc, i.shift_id))),
        roster=tuple(roster),
        plans=tuple(plans),
        punches=tuple(sorted(punches, key=lambda p: (p["at"], p["event_id"]))),
        expected=_expected(insts, plans, visits),
    )
