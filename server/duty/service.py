"""Duty logs in the database: import shifts and rosters, recompute from events, apply audited corrections."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from server.duty.handover import handover_findings
from server.duty.records import FINDING_KINDS, STATUSES, DutyRecord, Finding, Punch
from server.duty.reviewed import confirmed_punches
from server.duty.rosters_csv import LineError, parse_roster_csv, parse_shifts_csv
from server.duty.rules import DEFAULT_CHECKOUT_WINDOW_MIN, duty_records, record_findings
from server.duty.shifts import RosterEntry, Shift, all_instances, zone
from server.duty.tables import DutyCorrection, DutyDirty, DutyRecordRow, RosterRow, ShiftRow
from server.models import Event, Site, utcnow
from server.models import Finding as FindingRow
from server.registry import RegistryError, ensure_site
from server.sql_batch import among, insert_ignoring_duplicates, listed

PUNCH_TYPES = ("check_in", "check_out", "patrol")
SEVERITY = {"absent": "violation", "handover_gap": "violation", "unscheduled": "info"}
CORRECTABLE = {"status", "first_in", "last_out", "minutes_worked"}


class ImportRejected(ValueError):
    """A shifts or roster file with bad rows; nothing was imported."""

    def __init__(self, errors: list[LineError]):
        super().__init__(f"{len(errors)} bad row(s); nothing imported")
        self.errors = errors


def _shift(row: ShiftRow) -> Shift:
    return Shift(
        row.shift_id,
        row.post_id,
        row.site_id,
        row.name,
        time.fromisoformat(row.start),
        time.fromisoformat(row.end),
        row.checkin_window_min,
        row.late_grace_min,
        row.early_leave_grace_min,
        row.patrol_interval_min,
        row.tz,
    )


def load_shifts(session: Session, site_ids: Iterable[str] | None = None) -> list[Shift]:
    query = select(ShiftRow)
    if site_ids is not None:
        query = query.where(ShiftRow.site_id.in_(list(site_ids)))
    return [_shift(row) for row in session.scalars(query.order_by(ShiftRow.shift_id))]


def import_shifts(session: Session, text: str) -> int:
    shifts, errors = parse_shifts_csv(text)
    if errors:
        raise ImportRejected(errors)
    for s in shifts:
        ensure_site(session, s.site_id, tz=s.tz)
        session.merge(
            ShiftRow(
                shift_id=s.shift_id,
                post_id=s.post_id,
                site_id=s.site_id,
                name=s.name,
                start=f"{s.start:%H:%M}",
                end=f"{s.end:%H:%M}",
                checkin_window_min=s.checkin_window_min,
                late_grace_min=s.late_grace_min,
                early_leave_grace_min=s.early_leave_grace_min,
                patrol_interval_min=s.patrol_interval_min,
                tz=s.tz,
            )
        )
    session.flush()
    return len(shifts)


def import_roster(session: Session, text: str) -> int:
    shifts = load_shifts(session)
    entries, errors = parse_roster_csv(text, shifts)
    if errors:
        raise ImportRejected(errors)
    existing = set(session.execute(select(RosterRow.date, RosterRow.shift_id, RosterRow.guard_id)).all())
    new = [e for e in entries if (e.date, e.shift_id, e.guard_id) not in existing]
    session.add_all(RosterRow(date=e.date, shift_id=e.shift_id, guard_id=e.guard_id) for e in new)
    by_id = {s.shift_id: s for s in shifts}
    mark_dirty(session, {(by_id[e.shift_id].site_id, e.date) for e in new})
    session.flush()
    return len(new)


def mark_dirty(session: Session, site_days: Iterable[tuple[str, date]]) -> None:
    """Queue these sites' days for recomputation; a day already queued stays as it is (one statement)."""
    rows = [{"site_id": site_id, "date": day, "marked_at": utcnow()} for site_id, day in sorted(set(site_days))]
    if rows:
        session.connection().execute(insert_ignoring_duplicates(session, DutyDirty), rows)


def dirty_days_for_events(session: Session, events: Iterable[Event]) -> set[tuple[str, date]]:
    """A punch can belong to its local day's shifts or, for a night shift, the day before."""
    punches = [e for e in events if e.type in PUNCH_TYPES and e.guard_id is not None]
    if not punches:
        return set()
    site_ids = {e.site_id for e in punches}
    connection = session.connection()
    dialect = connection.dialect.name
    params = {"sites": listed(site_ids, dialect)}
    zones = {site_id: zone(tz or "UTC") for site_id, tz in connection.execute(_zones_query(dialect), params)}
    days = set()
    for event in punches:
        local = event.captured_at.replace(tzinfo=UTC).astimezone(zones.get(event.site_id) or UTC).date()
        days.add((event.site_id, local))
    return days | {(site_id, day - timedelta(days=1)) for site_id, day in days}


@cache
def _zones_query(dialect: str) -> Select:
    return select(Site.site_id, Site.timezone).where(among(Site.site_id, "sites", dialect))


@dataclass(frozen=True)
class Recomputed:
    records: int
    findings_raised: int
    findings_resolved: int


def recompute(session: Session, site_ids: Iterable[str], first: date, last: date, now: datetime) -> Recomputed:
    """Rebuild the duty records of these sites and days from the stored events, then re-apply corrections."""
    site_ids = sorted(set(site_ids))
    shifts = load_shifts(session, site_ids)
    instances = all_instances(shifts, first, last)
    roster = [
        RosterEntry(r.guard_id, r.shift_id, r.date)
        for r in session.scalars(
            select(RosterRow).where(
                RosterRow.date.between(first, last), RosterRow.shift_id.in_([s.shift_id for s in shifts])
            )
        )
    ]
    zones = dict(session.execute(select(Site.site_id, Site.timezone).where(Site.site_id.in_(site_ids))).all())
    start = datetime.combine(first, time(), tzinfo=UTC) - timedelta(days=2)
    end = datetime.combine(last, time(), tzinfo=UTC) + timedelta(days=2, minutes=DEFAULT_CHECKOUT_WINDOW_MIN)
    punches = [_punch(e) for e in _events(session, site_ids, start, end)]
    punches += confirmed_punches(session, site_ids, start, end)  # borderline matches a supervisor confirmed
    records = [r for r in duty_records(instances, roster, punches, now, site_tz=zones) if first <= r.date <= last]
    findings = record_findings(records) + handover_findings(records, instances)

    session.execute(
        delete(DutyRecordRow).where(DutyRecordRow.site_id.in_(site_ids), DutyRecordRow.date.between(first, last))
    )
    rows = [_row(r) for r in records]
    session.add_all(rows)
    _apply_corrections(session, rows, site_ids, first, last)
    raised, resolved = _store_findings(session, findings, site_ids, first, last, now)
    session.execute(delete(DutyDirty).where(DutyDirty.site_id.in_(site_ids), DutyDirty.date.between(first, last)))
    session.flush()
    return Recomputed(len(rows), raised, resolved)


def recompute_dirty(session: Session, now: datetime, limit_days: int = 62) -> Recomputed | None:
    """Recompute every site with queued days, over the span of its queued days (bounded)."""
    queued = session.execute(
        select(DutyDirty.site_id, func.min(DutyDirty.date), func.max(DutyDirty.date)).group_by(DutyDirty.site_id)
    ).all()
    if not queued:
        return None
    total = Recomputed(0, 0, 0)
    for site_id, first, last in queued:
        last = min(last, first + timedelta(days=limit_days - 1))
        done = recompute(session, [site_id], first, last, now)
        total = Recomputed(*(a + b for a, b in zip(total.__dict__.values(), done.__dict__.values(), strict=True)))
    return total


def _events(session: Session, site_ids: list[str], start: datetime, end: datetime) -> list[Event]:
    naive = (start.replace(tzinfo=None), end.replace(tzinfo=None))
    return list(
        session.scalars(
            select(Event).where(
                Event.site_id.in_(site_ids),
                Event.type.in_(PUNCH_TYPES),
                Event.guard_id.is_not(None),
                Event.captured_at.between(*naive),
            )
        )
    )


def _punch(event: Event) -> Punch:
    at = getattr(event, "corrected_at", None) or event.captured_at  # a re-dated unsynced clock wins
    return Punch(
        event.event_id,
        event.guard_id,
        event.site_id,
        event.device_id,
        event.type,
        at.replace(tzinfo=UTC),
        event.method,
        event.distance,
        event.liveness,
    )


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def _row(r: DutyRecord) -> DutyRecordRow:
    return DutyRecordRow(
        guard_id=r.guard_id,
        site_id=r.site_id,
        post_id=r.post_id,
        shift_id=r.shift_id,
        date=r.date,
        status=r.status,
        first_in=_naive(r.first_in),
        last_out=_naive(r.last_out),
        minutes_worked=r.minutes_worked,
        overtime_minutes=r.overtime_minutes,
        late_minutes=r.late_minutes,
        early_leave_minutes=r.early_leave_minutes,
        check_in_method=r.check_in_method,
        check_in_distance=r.check_in_distance,
        punch_ids=list(r.punches),
    )


def _apply_corrections(session: Session, rows: list[DutyRecordRow], site_ids: list[str], first: date, last: date):
    corrections = session.scalars(
        select(DutyCorrection)
        .where(DutyCorrection.site_id.in_(site_ids), DutyCorrection.date.between(first, last))
        .order_by(DutyCorrection.id)
    ).all()
    by_key = {(r.guard_id, r.shift_id, r.date): r for r in rows}
    for c in corrections:  # in order, so the latest correction of a field wins
        row = by_key.get((c.guard_id, c.shift_id, c.date))
        if row is not None:
            setattr(row, c.field, _parse_value(c.field, c.new_value))
            row.corrected = True


def _store_findings(session, findings: list[Finding], site_ids, first: date, last: date, now: datetime):
    keys = {f.key for f in findings}
    open_rows = session.scalars(
        select(FindingRow).where(
            FindingRow.kind.in_(FINDING_KINDS), FindingRow.site_id.in_(site_ids), FindingRow.resolved_at.is_(None)
        )
    ).all()
    resolved = 0
    for row in open_rows:
        day = date.fromisoformat(row.key.split(":")[3])
        if first <= day <= last and row.key not in keys:
            # A late event or a correction undid it: resolved, never deleted.
            row.resolved_at, row.resolved_by = _naive(now), "duty recompute"
            resolved += 1
    known = set(session.scalars(select(FindingRow.key).where(FindingRow.key.in_(keys)))) if keys else set()
    new = [f for f in findings if f.key not in known]
    session.add_all(
        FindingRow(
            key=f.key,
            kind=f.kind,
            severity=SEVERITY.get(f.kind, "warning"),
            site_id=f.site_id,
            guard_id=f.guard_id,
            detail=f.detail,
        )
        for f in new
    )
    return len(new), resolved


def _parse_value(field: str, value: str):
    if field == "status":
        if value not in STATUSES:
            raise RegistryError(f"status must be one of {', '.join(STATUSES)}")
        return value
    if field == "minutes_worked":
        if not value.isdigit() or int(value) > 48 * 60:
            raise RegistryError("minutes_worked must be a whole number of minutes up to 2880")
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RegistryError(
            f"{field} must be an RFC 3339 time with an offset, e.g. 2026-04-01T08:00:00+08:00"
        ) from None
    if moment.tzinfo is None:
        raise RegistryError(f"{field} needs an offset, e.g. +08:00")
    return _naive(moment)


def correct(
    session: Session, *, guard_id: str, shift_id: str | None, day: date, field: str, value: str, reason: str, by: str
) -> DutyCorrection:
    """Change one field of a duty record, keeping who, when, why and the old value."""
    if field not in CORRECTABLE:
        raise RegistryError(f"field must be one of {', '.join(sorted(CORRECTABLE))}")
    if not reason.strip():
        raise RegistryError("a correction needs a reason")
    row = session.scalar(
        select(DutyRecordRow).where(
            DutyRecordRow.guard_id == guard_id, DutyRecordRow.shift_id == shift_id, DutyRecordRow.date == day
        )
    )
    if row is None:
        raise RegistryError(f"no duty record for guard {guard_id}, shift {shift_id} on {day}")
    new = _parse_value(field, value)
    old = getattr(row, field)
    correction = DutyCorrection(
        guard_id=guard_id,
        site_id=row.site_id,
        shift_id=shift_id,
        date=day,
        field=field,
        old_value=None if old is None else str(old),
        new_value=value,
        reason=reason.strip(),
        corrected_by=by,
    )
    session.add(correction)
    setattr(row, field, new)
    row.corrected = True
    session.flush()
    return correction


def now_utc() -> datetime:
    return utcnow().replace(tzinfo=UTC)
