"""Companies, their police filings (home and cross-region), the sites they guard and the posts at those sites."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from protocol.topics import check_id
from server.ids import validate_credit_code
from server.models import FILING_STATUSES, Company, CrossRegionFiling, Post, Site
from server.provinces import normalise_province
from server.registry import RegistryError, check_timezone


def _province(raw: str, what: str) -> str:
    try:
        return normalise_province(raw)
    except ValueError as exc:
        raise RegistryError(f"{what}: {exc}") from None


def _company(session: Session, company_id: str) -> Company:
    company = session.get(Company, company_id)
    if company is None:
        raise RegistryError(f"no company {company_id}; add it first with 'guardpost companies add'")
    return company


def _check_status(status: str) -> str:
    if status not in FILING_STATUSES:
        raise RegistryError(f"filing status {status!r} is not one of {', '.join(FILING_STATUSES)}")
    return status


def add_company(
    session: Session,
    company_id: str,
    name: str,
    *,
    home_province: str,
    credit_code: str | None = None,
    filing_status: str = "pending",
    cross_region: Iterable[str] = (),
) -> Company:
    """Register a company with its home province and the provinces it filed in to work across regions."""
    check_id(company_id, "company_id")
    if not name or not name.strip():
        raise RegistryError(f"company {company_id} needs a name")
    if session.get(Company, company_id) is not None:
        raise RegistryError(f"company {company_id} already exists")
    if credit_code is not None:
        try:
            credit_code = validate_credit_code(credit_code)
        except ValueError as exc:
            raise RegistryError(f"company {company_id}: {exc}") from None
        other = session.scalar(select(Company.company_id).where(Company.credit_code == credit_code))
        if other is not None:
            raise RegistryError(f"unified social credit code {credit_code} is already registered to company {other}")
    company = Company(
        company_id=company_id,
        name=name.strip(),
        credit_code=credit_code,
        filing_status=_check_status(filing_status),
        home_province=_province(home_province, "home province"),
    )
    session.add(company)
    session.flush()
    for province in cross_region:
        file_cross_region(session, company_id, province)
    return company


def set_filing_status(session: Session, company_id: str, status: str) -> Company:
    company = _company(session, company_id)
    company.filing_status = _check_status(status)
    session.flush()
    return company


def file_cross_region(
    session: Session, company_id: str, province: str, filed_on: date | None = None
) -> CrossRegionFiling:
    """Record that a company filed to work in another province (跨区域经营备案)."""
    company = _company(session, company_id)
    province = _province(province, "cross-region province")
    if province == company.home_province:
        raise RegistryError(f"{province} is company {company_id}'s home province; no cross-region filing is needed")
    if any(filing.province == province for filing in company.cross_region_filings):
        raise RegistryError(f"company {company_id} already has a cross-region filing for {province}")
    filing = CrossRegionFiling(province=province, filed_on=filed_on)
    company.cross_region_filings.append(filing)
    session.flush()
    return filing


def may_work_in(company: Company, province: str | None) -> bool:
    """Whether the company's filings allow it to guard a site in ``province`` (unknown province: home filing only)."""
    if company.filing_status != "filed":
        return False
    if province is None or province == company.home_province:
        return True
    return any(filing.province == province for filing in company.cross_region_filings)


def add_site(
    session: Session,
    site_id: str,
    name: str,
    *,
    tz: str,
    company_id: str | None = None,
    address: str = "",
    province: str | None = None,
) -> Site:
    """Register a site with its IANA time zone and, optionally, the company guarding it."""
    check_id(site_id, "site_id")
    if session.get(Site, site_id) is not None:
        raise RegistryError(f"site {site_id} already exists; change it with 'guardpost sites set'")
    site = Site(site_id=site_id, name=name.strip() or site_id, timezone=check_timezone(tz))
    session.add(site)
    _apply_site_fields(session, site, company_id=company_id, address=address, province=province)
    session.flush()
    return site


def update_site(
    session: Session,
    site_id: str,
    *,
    name: str | None = None,
    tz: str | None = None,
    company_id: str | None = None,
    address: str | None = None,
    province: str | None = None,
) -> Site:
    """Change the given fields of a site, e.g. one created implicitly by 'guardpost devices add'."""
    site = session.get(Site, site_id)
    if site is None:
        raise RegistryError(f"no site {site_id}; add it with 'guardpost sites add'")
    if name is not None:
        site.name = name.strip() or site_id
    if tz is not None:
        site.timezone = check_timezone(tz)
    _apply_site_fields(session, site, company_id=company_id, address=address, province=province)
    session.flush()
    return site


def _apply_site_fields(
    session: Session, site: Site, *, company_id: str | None, address: str | None, province: str | None
) -> None:
    if company_id is not None:
        site.company_id = _company(session, company_id).company_id
    if address is not None:
        if len(address) > 300:
            raise RegistryError(f"site {site.site_id}: the address is {len(address)} characters; at most 300")
        site.address = address.strip()
    if province is not None:
        site.province = _province(province, f"site {site.site_id} province")


def add_post(session: Session, post_id: str, site_id: str, name: str) -> Post:
    """A duty post at a site: a gate, a watch point, a patrol round."""
    check_id(post_id, "post_id")
    if session.get(Site, site_id) is None:
        raise RegistryError(f"no site {site_id}; add it with 'guardpost sites add'")
    if session.get(Post, post_id) is not None:
        raise RegistryError(f"post {post_id} already exists")
    if not name or not name.strip():
        raise RegistryError(f"post {post_id} needs a name")
    post = Post(post_id=post_id, site_id=site_id, name=name.strip())
    session.add(post)
    session.flush()
    return post
