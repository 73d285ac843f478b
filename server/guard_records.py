"""What supervisors read about a guard: certificate status (持证上岗), employment trajectory (就业轨迹), summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.ids import validate_resident_id
from server.lookup_digests import lookup_keys
from server.models import Assignment, Company, Credential, Guard, Site, utcnow
from server.registry import RegistryError

CertificateStatus = Literal["valid", "expired", "missing"]


@dataclass(frozen=True)
class TrajectoryEntry:
    """One posting: which company put the guard at which site, from when until when (naive UTC; end open)."""

    company_id: str | None
    company_name: str | None
    site_id: str
    site_name: str
    start: datetime
    end: datetime | None


def guard_by_id_number(session: Session, cipher: Fernet, raw: str) -> Guard | None:
    """The guard registered with this resident ID number (as an ID-card reader returns it), if any.

    ``cipher`` is the server key, which keys the digests the lookup compares.
    """
    try:
        number = validate_resident_id(raw).number
    except ValueError:
        return None
    digest = lookup_keys(cipher).id_number(number)
    return session.scalar(select(Guard).where(Guard.id_number_hmac == digest))


def _guard(session: Session, guard_id: str) -> Guard:
    guard = session.get(Guard, guard_id)
    if guard is None:
        raise RegistryError(f"no guard {guard_id}")
    return guard


def guard_certificate_status(session: Session, guard_id: str, today: date | None = None) -> CertificateStatus:
    """``valid`` if a certificate is in force on ``today`` (UTC date by default), ``expired`` if the guard
    only has certificates that ran out, ``missing`` if there is none (or none issued yet)."""
    _guard(session, guard_id)
    return certificate_statuses(session, [guard_id], today)[guard_id]


def certificate_statuses(
    session: Session, guard_ids: list[str], today: date | None = None
) -> dict[str, CertificateStatus]:
    """guard_certificate_status for many guards in one query (a page of a list)."""
    today = today or utcnow().date()
    dates: dict[str, list[tuple[date | None, date | None]]] = {guard_id: [] for guard_id in guard_ids}
    query = select(Credential.guard_id, Credential.issued_on, Credential.valid_until).where(
        Credential.guard_id.in_(guard_ids), Credential.kind == "certificate"
    )
    for guard_id, issued_on, valid_until in session.execute(query):
        dates[guard_id].append((issued_on, valid_until))
    return {guard_id: status_on(held, today) for guard_id, held in dates.items()}


def status_on(certificates: list[tuple[date | None, date | None]], today: date) -> CertificateStatus:
    """The status that certificates held with these (issued_on, valid_until) dates give on ``today``."""
    # A certificate dated after today is not held yet: it neither licenses the guard nor has expired.
    issued = [until for since, until in certificates if since is None or since <= today]
    if any(until is None or until >= today for until in issued):
        return "valid"
    return "expired" if issued else "missing"


def trajectory(session: Session, guard_id: str) -> list[TrajectoryEntry]:
    """Every posting of the guard, oldest first, ended ones included."""
    _guard(session, guard_id)
    rows = session.execute(
        select(Assignment, Site.name, Company.name)
        .join(Site, Site.site_id == Assignment.site_id)
        .outerjoin(Company, Company.company_id == Assignment.company_id)
        .where(Assignment.guard_id == guard_id)
        .order_by(Assignment.start, Assignment.id)
    ).all()
    return [
        TrajectoryEntry(
            company_id=assignment.company_id,
            company_name=company_name,
            site_id=assignment.site_id,
            site_name=site_name,
            start=assignment.start,
            end=assignment.end,
        )
        for assignment, site_name, company_name in rows
    ]


def _iso(moment: datetime | None) -> str | None:
    """Stored naive UTC as RFC 3339 with +00:00."""
    return None if moment is None else moment.replace(tzinfo=UTC).isoformat()


def guard_summary(session: Session, guard_id: str, today: date | None = None) -> dict[str, Any]:
    """A JSON-ready record of one guard for supervisors: masked ID number only, never the number."""
    guard = _guard(session, guard_id)
    return {
        "guard_id": guard.guard_id,
        "name": guard.name,
        "id_number_masked": guard.id_number_masked,
        "birth_date": guard.birth_date.isoformat() if guard.birth_date else None,
        "sex": guard.sex,
        "company_id": guard.company_id,
        "face_consent": guard.face_consent_at is not None,
        "certificate_status": guard_certificate_status(session, guard_id, today),
        "trajectory": [
            {
                "company_id": entry.company_id,
                "company_name": entry.company_name,
                "site_id": entry.site_id,
                "site_name": entry.site_name,
                "start": _iso(entry.start),
                "end": _iso(entry.end),
            }
            for entry in trajectory(session, guard_id)
        ],
    }
