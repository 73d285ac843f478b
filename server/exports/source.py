"""Read what an export covers from the database, within a user's scope, in batches of guards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.duty.service import load_shifts
from server.duty.tables import DutyRecordRow
from server.exports.request import ExportRequest
from server.exports.rows import DutyEntry, GuardInfo, Registry, SiteInfo, aware, month_days
from server.models import Assignment, Company, Credential, Guard, Post, Site
from server.scope import Scope

BATCH = 500  # guards per round of queries: bounded memory, and IN lists well under every driver's limit


@dataclass(frozen=True)
class Plan:
    """The days, sites and guards of one export; rows come only from these sites' duty records."""

    request: ExportRequest
    days: list[date]
    sites_query: object  # SELECT site_id ... : the sites in scope and in the request
    guard_ids: list[str]
    registry: Registry
    employers: dict[str, str]


def plan_export(session: Session, scope: Scope, request: ExportRequest) -> Plan:
    """The export's sites (scope and request together) and guards: those with duty records there that month,
    those posted there during the month, or the one guard asked for (if in scope)."""
    days = month_days(request.month)
    sites_query = select(Site.site_id).where(scope.site_clause())
    if request.site:
        sites_query = sites_query.where(Site.site_id == request.site)
    if request.company:
        sites_query = sites_query.where(Site.company_id == request.company)
    sites = {
        site.site_id: SiteInfo(site.site_id, site.name or site.site_id, site.timezone or "UTC")
        for site in session.scalars(select(Site).where(Site.site_id.in_(sites_query)))
    }
    if request.guard:
        in_scope = scope.everything or scope.allows_guard(session, request.guard)
        guard_ids = [request.guard] if in_scope else []
    else:
        start = datetime.combine(days[0], time()) - timedelta(days=1)  # posting times are UTC; zones differ by < 1 day
        end = datetime.combine(days[-1], time()) + timedelta(days=2)
        recorded = select(DutyRecordRow.guard_id).where(
            DutyRecordRow.site_id.in_(sites_query), DutyRecordRow.date.between(days[0], days[-1])
        )
        posted = select(Assignment.guard_id).where(
            Assignment.site_id.in_(sites_query),
            Assignment.start < end,
            or_(Assignment.end.is_(None), Assignment.end > start),
        )
        guard_ids = sorted(set(session.scalars(recorded.distinct())) | set(session.scalars(posted.distinct())))
    posts = dict(session.execute(select(Post.post_id, Post.name).where(Post.site_id.in_(sites_query))).all())
    shifts = {shift.shift_id: shift for shift in load_shifts(session, list(sites))}
    employers = {cid: name or cid for cid, name in session.execute(select(Company.company_id, Company.name))}
    return Plan(request, days, sites_query, guard_ids, Registry(sites, posts, shifts), employers)


def batches(session: Session, plan: Plan, size: int = BATCH) -> Iterator[list[tuple[GuardInfo, list[DutyEntry]]]]:
    """The plan's guards with their duty records, ``size`` guards at a time, in guard id order."""
    for offset in range(0, len(plan.guard_ids), size):
        ids = plan.guard_ids[offset : offset + size]
        guards = {
            gid: (name, masked, company)
            for gid, name, masked, company in session.execute(
                select(Guard.guard_id, Guard.name, Guard.id_number_masked, Guard.company_id).where(
                    Guard.guard_id.in_(ids)
                )
            )
        }
        certificates: dict[str, list[tuple[date | None, date | None]]] = {gid: [] for gid in ids}
        for gid, issued, until in session.execute(
            select(Credential.guard_id, Credential.issued_on, Credential.valid_until).where(
                Credential.guard_id.in_(ids), Credential.kind == "certificate"
            )
        ):
            certificates[gid].append((issued, until))
        entries: dict[str, list[DutyEntry]] = {gid: [] for gid in ids}
        for row in session.execute(
            select(*COLUMNS)
            .where(
                DutyRecordRow.guard_id.in_(ids),
                DutyRecordRow.site_id.in_(plan.sites_query),
                DutyRecordRow.date.between(plan.days[0], plan.days[-1]),
            )
            .order_by(DutyRecordRow.guard_id, DutyRecordRow.date, DutyRecordRow.id)
        ):
            entries[row.guard_id].append(_entry(row))
        batch = []
        for gid in ids:
            # A duty record may name a guard the registry no longer has: it is still exported, by id.
            name, masked, company = guards.get(gid, ("", None, None))
            employer = plan.employers.get(company, company) if company else None
            batch.append((GuardInfo(gid, name, masked, employer, tuple(certificates[gid])), entries[gid]))
        yield batch


COLUMNS = (
    DutyRecordRow.guard_id,
    DutyRecordRow.site_id,
    DutyRecordRow.post_id,
    DutyRecordRow.shift_id,
    DutyRecordRow.date,
    DutyRecordRow.status,
    DutyRecordRow.first_in,
    DutyRecordRow.last_out,
    DutyRecordRow.minutes_worked,
    DutyRecordRow.late_minutes,
    DutyRecordRow.early_leave_minutes,
    DutyRecordRow.overtime_minutes,
    DutyRecordRow.check_in_method,
    DutyRecordRow.corrected,
)


def _entry(row) -> DutyEntry:
    return DutyEntry(
        guard_id=row.guard_id,
        site_id=row.site_id,
        post_id=row.post_id,
        shift_id=row.shift_id,
        date=row.date,
        status=row.status,
        first_in=aware(row.first_in),
        last_out=aware(row.last_out),
        minutes_worked=row.minutes_worked,
        late_minutes=row.late_minutes,
        early_leave_minutes=row.early_leave_minutes,
        overtime_minutes=row.overtime_minutes,
        check_in_method=row.check_in_method,
        corrected=bool(row.corrected),
    )
