"""Read the records to report from the database as snapshots: our fields as JSON-ready values, per kind."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from protocol.signing import canonical_json
from server.duty.tables import DutyRecordRow
from server.models import Assignment, Company, Credential, Finding, Guard, Site
from server.scope import Scope


@dataclass(frozen=True)
class SourceRecord:
    """One record as it is now; ``digest`` changes exactly when a reported field changes."""

    kind: str
    key: str
    company_id: str | None
    record_date: date | None
    fields: dict[str, Any]

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.fields)).hexdigest()


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _number(masked: str | None, encrypted: bytes | None) -> dict[str, str | None] | None:
    # The ciphertext travels with the snapshot so a mapping that asks for the full number can be honoured
    # at send time; it is the same Fernet token as in the guards table, readable only with the server key.
    if masked is None:
        return None
    return {"masked": masked, "encrypted": base64.b64encode(encrypted).decode("ascii") if encrypted else None}


class Sources:
    """The records of one province: what a police user of that jurisdiction may see."""

    def __init__(self, session: Session, province: str):
        self.session = session
        self.scope = Scope(role="police", jurisdiction=province)
        self._companies = {c.company_id: c for c in session.scalars(select(Company))}
        self._guards: dict[str, Guard] | None = None

    def _company(self, company_id: str | None) -> dict[str, Any]:
        company = self._companies.get(company_id or "")
        return {
            "company_id": company_id,
            "company_name": company.name if company else None,
            "company_credit_code": company.credit_code if company else None,
        }

    def _guard(self, guard_id: str | None) -> Guard | None:
        if self._guards is None:
            self._guards = {g.guard_id: g for g in self.session.scalars(select(Guard))}
        return self._guards.get(guard_id or "")

    def _guard_fields(self, guard_id: str | None) -> dict[str, Any]:
        guard = self._guard(guard_id)
        return {
            "guard_id": guard_id,
            "guard_name": guard.name if guard else None,
            "id_number": _number(guard.id_number_masked, guard.id_number_encrypted) if guard else None,
        }

    def guards(self) -> list[SourceRecord]:
        latest = (
            select(Credential.guard_id, func.max(Credential.id).label("id"))
            .where(Credential.kind == "certificate")
            .group_by(Credential.guard_id)
            .subquery()
        )
        rows = self.session.execute(
            select(Guard, Credential)
            .outerjoin(latest, latest.c.guard_id == Guard.guard_id)
            .outerjoin(Credential, Credential.id == latest.c.id)
            .where(self.scope.guard_clause())
            .order_by(Guard.guard_id)
        ).all()
        records = []
        for guard, cert in rows:
            fields = {
                "guard_id": guard.guard_id,
                "name": guard.name,
                "id_number": _number(guard.id_number_masked, guard.id_number_encrypted),
                "sex": guard.sex,
                "birth_date": _iso(guard.birth_date),
                **self._company(guard.company_id),
                "certificate_number": _number(cert.number_masked, cert.number_encrypted) if cert else None,
                "certificate_issued_on": _iso(cert.issued_on) if cert else None,
                "certificate_valid_until": _iso(cert.valid_until) if cert else None,
                "face_consent": guard.face_consent_at is not None,
                "registered_at": _iso(guard.created_at),
            }
            records.append(SourceRecord("guards", guard.guard_id, guard.company_id, None, fields))
        return records

    def assignments(self) -> list[SourceRecord]:
        rows = self.session.execute(
            select(Assignment, Site)
            .join(Site, Site.site_id == Assignment.site_id)
            .where(self.scope.site_clause())
            .order_by(Assignment.id)
        ).all()
        records = []
        for assignment, site in rows:
            company_id = assignment.company_id or site.company_id
            fields = {
                "assignment_id": assignment.id,
                **self._guard_fields(assignment.guard_id),
                **self._company(company_id),
                "site_id": site.site_id,
                "site_name": site.name,
                "site_address": site.address,
                "site_province": site.province,
                "start": _iso(assignment.start),
                "end": _iso(assignment.end),
                "active": assignment.end is None,
            }
            records.append(SourceRecord("assignments", str(assignment.id), company_id, None, fields))
        return records

    def duty_logs(self, since: date, include_in_progress: bool) -> list[SourceRecord]:
        query = (
            select(DutyRecordRow, Site)
            .join(Site, Site.site_id == DutyRecordRow.site_id)
            .where(self.scope.site_clause(), DutyRecordRow.date >= since)
            .order_by(DutyRecordRow.date, DutyRecordRow.site_id, DutyRecordRow.guard_id, DutyRecordRow.id)
        )
        if not include_in_progress:
            query = query.where(DutyRecordRow.status != "in_progress")
        records = []
        for row, site in self.session.execute(query).all():
            fields = {
                **self._guard_fields(row.guard_id),
                **self._company(site.company_id),
                "site_id": site.site_id,
                "site_name": site.name,
                "post_id": row.post_id,
                "shift_id": row.shift_id,
                "date": row.date.isoformat(),
                "status": row.status,
                "first_in": _iso(row.first_in),
                "last_out": _iso(row.last_out),
                "minutes_worked": row.minutes_worked,
                "overtime_minutes": row.overtime_minutes,
                "late_minutes": row.late_minutes,
                "early_leave_minutes": row.early_leave_minutes,
                "check_in_method": row.check_in_method,
                "corrected": bool(row.corrected),
            }
            records.append(SourceRecord("duty_logs", duty_key(row), site.company_id, row.date, fields))
        return records

    def findings(self, since: datetime, kinds: list[str] | None) -> list[SourceRecord]:
        in_province = or_(
            Finding.site_id.in_(self.scope.site_ids_query()),
            and_(
                Finding.site_id.is_(None),
                Finding.guard_id.in_(select(Guard.guard_id).where(self.scope.guard_clause())),
            ),
        )
        recent = or_(Finding.created_at >= since, Finding.resolved_at.is_(None), Finding.resolved_at >= since)
        query = select(Finding).where(in_province, recent).order_by(Finding.id)
        if kinds is not None:
            query = query.where(Finding.kind.in_(kinds))
        sites = {s.site_id: s for s in self.session.scalars(select(Site))}
        records = []
        for finding in self.session.scalars(query):
            site = sites.get(finding.site_id or "")
            employer = self._guard(finding.guard_id)
            # The site's contractor answers for what happens there; a guard-only finding goes to the employer.
            company_id = site.company_id if site is not None else (employer.company_id if employer else None)
            fields = {
                "finding_id": finding.id,
                "kind": finding.kind,
                "severity": finding.severity,
                "site_id": finding.site_id,
                "site_name": site.name if site else None,
                **self._guard_fields(finding.guard_id),
                **self._company(company_id),
                "device_id": finding.device_id,
                "detail": finding.detail,
                "created_at": _iso(finding.created_at),
                "resolved_at": _iso(finding.resolved_at),
                "resolved": finding.resolved_at is not None,
            }
            records.append(SourceRecord("findings", str(finding.id), company_id, None, fields))
        return records


def duty_key(row: DutyRecordRow) -> str:
    """Stable across recomputes (row ids are not): guard, site, shift and day; a visit adds its first punch."""
    parts = [row.guard_id, row.site_id, row.shift_id or "-", row.date.isoformat()]
    if row.shift_id is None:
        parts.append(row.punch_ids[0] if row.punch_ids else "-")
    return "|".join(parts)


def snapshot(session: Session, kind: str, province: str, today: date, lookback_days: int, **options) -> list:
    """Every record of ``kind`` currently in scope for reporting."""
    sources = Sources(session, province)
    since = today - timedelta(days=lookback_days)
    if kind == "guards":
        return sources.guards()
    if kind == "assignments":
        return sources.assignments()
    if kind == "duty_logs":
        return sources.duty_logs(since, options.get("include_in_progress", False))
    if kind == "findings":
        return sources.findings(datetime.combine(since, datetime.min.time()), options.get("finding_kinds"))
    raise ValueError(f"unknown record kind {kind!r}")
