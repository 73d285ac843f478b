"""Users: roles with their scope, API tokens and passwords."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Company, Site, User, UserSite
from server.passwords import check_policy, hash_password
from server.provinces import normalise_province
from server.registry import RegistryError

ROLES = ("admin", "police", "manager", "supervisor")


def hash_token(token: str) -> str:
    # API tokens are 256 random bits: a fast hash is enough, unlike for passwords.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_scope(
    session: Session, role: str, company_id: str | None, jurisdiction: str | None, site_ids: list[str]
) -> str | None:
    """Validate the scope a role needs; returns the normalised jurisdiction."""
    if role not in ROLES:
        raise RegistryError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role == "manager" and not company_id:
        raise RegistryError("a manager needs --company (the company whose sites and guards they manage)")
    if role == "police" and not jurisdiction:
        raise RegistryError("a police user needs --jurisdiction (a province code such as 44 or 440000, or its name)")
    if role == "supervisor" and not site_ids:
        raise RegistryError("a supervisor needs at least one --site")
    if company_id and session.get(Company, company_id) is None:
        raise RegistryError(f"no company {company_id}; add it first with 'guardpost companies add'")
    for site_id in site_ids:
        if session.get(Site, site_id) is None:
            raise RegistryError(f"no site {site_id}; add it first with 'guardpost sites add'")
    if jurisdiction is None:
        return None
    try:
        return normalise_province(jurisdiction)
    except ValueError as exc:
        raise RegistryError(str(exc)) from None


def add_user(
    session: Session,
    name: str,
    role: str,
    *,
    company_id: str | None = None,
    jurisdiction: str | None = None,
    site_ids: Iterable[str] = (),
    password: str | None = None,
) -> tuple[User, str]:
    """Create a user and return it with its API token; only hashes of the token and password are stored."""
    sites = sorted(set(site_ids))
    jurisdiction = _check_scope(session, role, company_id, jurisdiction, sites)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise RegistryError(f"user {name} already exists")
    token = secrets.token_urlsafe(32)
    user = User(
        name=name,
        role=role,
        token_sha256=hash_token(token),
        company_id=company_id if role in ("manager", "supervisor") else None,
        jurisdiction=jurisdiction if role == "police" else None,
        sites=[UserSite(site_id=site_id) for site_id in sites] if role == "supervisor" else [],
    )
    if password is not None:
        set_password(user, password)
    session.add(user)
    session.flush()
    return user, token


def set_password(user: User, password: str) -> None:
    try:
        check_policy(user.name, password)
    except ValueError as exc:
        raise RegistryError(str(exc)) from None
    user.password_hash = hash_password(password)


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise RegistryError(f"no user {name}; see 'guardpost users list'")
    return user


def new_token(user: User) -> str:
    """Replace the user's API token; the old one stops working at once."""
    token = secrets.token_urlsafe(32)
    user.token_sha256 = hash_token(token)
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token:
        return None
    user = session.scalar(select(User).where(User.token_sha256 == hash_token(token)))
    return user if user is not None and not user.disabled else None
