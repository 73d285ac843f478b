"""What a user may see: admin everything, police a jurisdiction read-only, a manager a company, a supervisor sites."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from server.models import Assignment, Company, Guard, Site, User

WRITE_ROLES = ("admin", "manager", "supervisor")


class ScopeError(ValueError):
    """A user whose role lacks the scope it needs (a manager without a company...)."""


@dataclass(frozen=True)
class Scope:
    role: str
    user_name: str = ""
    company_id: str | None = None
    jurisdiction: str | None = None
    site_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def everything(self) -> bool:
        return self.role == "admin"

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES

    def key(self) -> tuple:
        """What the scope covers, without who holds it: users with equal keys see the same data."""
        return (self.role, self.company_id, self.jurisdiction, tuple(sorted(self.site_ids)))

    def describe(self) -> str:
        if self.role == "police":
            return f"jurisdiction {self.jurisdiction}"
        if self.role == "manager":
            return f"company {self.company_id}"
        if self.role == "supervisor":
            return "sites " + ", ".join(sorted(self.site_ids)) if self.site_ids else "no sites"
        return "all companies and sites"

    def site_clause(self) -> ColumnElement[bool]:
        """A condition over ``Site`` rows that holds for the sites in scope."""
        if self.everything:
            return true()
        if self.role == "police":
            home = select(Company.company_id).where(Company.home_province == self.jurisdiction)
            # A site without its own province lies where its contractor is registered.
            return or_(Site.province == self.jurisdiction, and_(Site.province.is_(None), Site.company_id.in_(home)))
        if self.role == "manager":
            return Site.company_id == self.company_id
        if self.role == "supervisor" and self.site_ids:
            return Site.site_id.in_(sorted(self.site_ids))
        return false()

    def site_ids_query(self):
        return select(Site.site_id).where(self.site_clause())

    def visible_site_ids(self, session: Session) -> set[str] | None:
        """The site ids in scope, or None for all sites (admin)."""
        if self.everything:
            return None
        return set(session.scalars(self.site_ids_query()))

    def allows_site(self, session: Session, site_id: str) -> bool:
        if self.everything:
            return session.get(Site, site_id) is not None
        return session.scalar(select(Site.site_id).where(Site.site_id == site_id, self.site_clause())) is not None

    def guard_clause(self) -> ColumnElement[bool]:
        """A condition over ``Guard`` rows: guards posted at any time to a site in scope, or employed by it."""
        if self.everything:
            return true()
        posted = exists().where(Assignment.guard_id == Guard.guard_id, Assignment.site_id.in_(self.site_ids_query()))
        if self.role == "manager":
            return or_(Guard.company_id == self.company_id, posted)
        if self.role == "police":
            home = select(Company.company_id).where(Company.home_province == self.jurisdiction)
            return or_(Guard.company_id.in_(home), posted)
        return posted

    def allows_guard(self, session: Session, guard_id: str) -> bool:
        return session.scalar(select(Guard.guard_id).where(Guard.guard_id == guard_id, self.guard_clause())) is not None

    def allows_company(self, company_id: str | None) -> bool:
        return self.everything or (self.role == "manager" and company_id == self.company_id)


def scope_for(user: User) -> Scope:
    """The user's scope; a role missing its scope column sees nothing rather than everything."""
    return Scope(
        role=user.role,
        user_name=user.name,
        company_id=user.company_id,
        jurisdiction=user.jurisdiction,
        site_ids=frozenset(link.site_id for link in user.sites),
    )
