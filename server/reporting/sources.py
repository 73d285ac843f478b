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
        self._companies: dict[str | None, dict[str, Any]] = {
            c.company_id: {"company_id": c.company_id, "company_name": c.name, "company_credit_code": c.credit_code}
            for c in session.scalars(select(Company))
        }
        self._guards: dict[str | None, tuple[dict[str, Any], str | None]] | None = None

    def _company(self, company_id: str | None) -> dict[str, Any]:
        known = self._companies.get(company_id)
        return (
            known
            if known is not None
            else {"company_id": company_id, "company_name": None, "company_credit_code": None}
        )

    def _guard_info(self, guard_id: str | None) -> tuple[dict[str, Any], str | None]:
        """The guard's fields as other kinds carry them, and the employer; read once, as plain rows (fast)."""
        if self._guards is None:
            rows = self.session.execute(
                select(Guard.guard_id, Guard.name, Guard.id_number_masked, Guard.id_number_encrypted, Guard.company_id)
            )
            self._guards = {
                r.guard_id: (
                    {
                        "guard_id": r.guard_id,
                        "guard_name": r.name,
                        "id_number": _number(r.id_number_masked, r.id_number_encrypted),
                    },
                    r.company_id,
                )
                for r in rows
            }
        known = self._guards.get(guard_id)
        return known if known is not None else ({"guard_id": guard_id, "guard_name": None, "id_number": None}, None)

    def _guard_fields(self, guard_id: str | None) -> dict[str, Any]:
        return self._guard_info(guard_id)[0]

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
        # Plain rows, not ORM objects: a month of a large deployment is tens of thousands of records per round.
        d = DutyRecordRow.__table__.c
        query = (
            select(
                d.guard_id, d.site_id, d.post_id, d.shift_id, d.date, d.status, d.first_in, d.last_out,
                d.minutes_worked, d.overtime_minutes, d.late_minutes, d.early_leave_minutes, d.check_in_method,
                d.corrected, d.punch_ids, Site.name.label("site_name"), Site.company_id,
            )
            .join(Site, Site.site_id == d.site_id)
            .where(self.scope.site_clause(), d.date >= since)
            .order_by(d.date, d.site_id, d.guard_id, d.id)
        )  # fmt: skip
        if not include_in_progress:
            query = query.where(d.status != "in_progress")
        records = []
        for row in self.session.execute(query):
            fields = {
                **self._guard_fields(row.guard_id),
                **self._company(row.company_id),
                "site_id": row.site_id,
                "site_name": row.site_name,
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
            records.append(SourceRecord("duty_logs", duty_key(row), row.company_id, row.date, fields))
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
            guard, employer = self._guard_info(finding.guard_id)
            # The site's contractor answers for what happens there; a guard-only finding goes to the employer.
            company_id = site.company_id if site is not None else employer
            fields = {
                "finding_id": finding.id,
                "kind": finding.kind,
                "severity": finding.severity,
                "site_id": finding.site_id,
                "site_name": site.name if site else None,
                **guard,
                **self._company(company_id),
                "device_id": finding.device_id,
                "detail": finding.detail,
                "created_at": _iso(finding.created_at),
                "resolved_at": _iso(finding.resolved_at),
                "resolved": finding.resolved_at is not None,
            }
            records.append(SourceRecord("findings", str(finding.id), company_id, None, fields))
        return records


def duty_key(row) -> str:
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
