"""Whether a scope may ask for an export: a company, site or guard outside it is refused with the reason."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from server.exports.request import ExportRequest
from server.models import Company, Site
from server.scope import Scope


def company_in_scope(session: Session, scope: Scope, company_id: str) -> bool:
    """Admin: any company; a manager: their own; police: one registered in, or guarding a site in, their
    jurisdiction. Supervisors are scoped to sites, not companies."""
    company = session.get(Company, company_id)
    if company is None:
        return False
    if scope.allows_company(company_id):
        return True
    if scope.role != "police":
        return False
    guarding = session.scalar(select(exists().where(Site.company_id == company_id, scope.site_clause())))
    return company.home_province == scope.jurisdiction or bool(guarding)


def refusal(session: Session, scope: Scope, request: ExportRequest) -> str | None:
    """Why ``scope`` may not ask for ``request``, or None; the rows are filtered by the scope in any case."""
    outside = f"is outside this user's scope ({scope.describe()})"
    if request.site and not scope.allows_site(session, request.site):
        return f"site {request.site} {outside}"
    if request.guard and not (scope.everything or scope.allows_guard(session, request.guard)):
        return f"guard {request.guard} {outside}"
    if request.company and not company_in_scope(session, scope, request.company):
        return f"company {request.company} {outside}"
    return None
