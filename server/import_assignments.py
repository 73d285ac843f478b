"""Bulk import of postings (guard, site, start, end): the employment trajectory, all rows or none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.import_fields import Errors, Fields
from server.importer import (
    CHUNK,
    ImportRejected,
    ImportResult,
    Progress,
    Source,
    Ticker,
    chunks,
    first_seen,
    flush_or_reject,
    load_table,
    lookup,
)
from server.models import Assignment, Company, Guard, Site

ASSIGNMENT_COLUMNS = ("guard_id", "site_id", "start", "end", "company_id")
ASSIGNMENT_REQUIRED = ("guard_id", "site_id", "start")


@dataclass
class _AssignmentRow:
    fields: Fields
    guard_id: str | None
    site_id: str | None
    company_id: str | None
    start: datetime | None = None
    end: datetime | None = None


def import_assignments(
    session: Session,
    source: Source,
    filename: str = "",
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Add every posting in the file; times without an offset are the site's local time. The caller commits.

    The posting company is the ``company_id`` column, else the guard's employer, else the site's company.
    Raises ImportRejected, with nothing added to the session, if any row is bad.
    """
    table = load_table(source, filename, ASSIGNMENT_COLUMNS, ASSIGNMENT_REQUIRED)
    tick, errors = Ticker(progress, len(table.rows), dry_run), Errors()
    rows = []
    for row in table.rows:
        f = Fields(row, errors)
        rows.append(
            _AssignmentRow(
                f, f.ident("guard_id", required=True), f.ident("site_id", required=True), f.ident("company_id")
            )
        )
    guards = lookup(session, Guard.guard_id, Guard.company_id, (r.guard_id for r in rows))
    sites = {
        site_id: (tz, company)
        for site_id, tz, company in _sites(session, {r.site_id for r in rows if r.site_id is not None})
    }
    companies = lookup(session, Company.company_id, Company.company_id, (r.company_id for r in rows))
    for r in rows:
        _check_row(r, guards, sites, companies)
        tick()
    _check_duplicates(session, rows, errors)
    if errors:
        raise ImportRejected(errors.report(table.columns))
    if not dry_run:
        for start in range(0, len(rows), CHUNK):
            for r in rows[start : start + CHUNK]:
                company = r.company_id or guards.get(r.guard_id) or sites[r.site_id][1]  # type: ignore[index]
                session.add(
                    Assignment(guard_id=r.guard_id, site_id=r.site_id, company_id=company, start=r.start, end=r.end)
                )
                tick()
            flush_or_reject(session)
    return ImportResult(imported=len(rows), dry_run=dry_run)


def _sites(session: Session, site_ids: set[str]) -> list[tuple[str, str, str | None]]:
    return [
        row
        for chunk in chunks(site_ids)
        for row in session.execute(select(Site.site_id, Site.timezone, Site.company_id).where(Site.site_id.in_(chunk)))
    ]


def _check_row(
    r: _AssignmentRow,
    guards: dict[str, str | None],
    sites: dict[str, tuple[str, str | None]],
    companies: dict[str, str],
) -> None:
    f = r.fields
    if r.guard_id is not None and r.guard_id not in guards:
        f.fail("guard_id", f"no guard {r.guard_id}; import or add the guard first")
    if r.company_id is not None and r.company_id not in companies:
        f.fail("company_id", f"no company {r.company_id}; add it with 'guardpost companies add'")
    if r.site_id is None:
        return
    if r.site_id not in sites:
        f.fail("site_id", f"no site {r.site_id}; add it with 'guardpost sites add'")
        return
    tz = ZoneInfo(sites[r.site_id][0])
    r.start = f.moment("start", tz, required=True)
    r.end = f.moment("end", tz)
    if r.start is not None and r.end is not None and r.end <= r.start:
        f.fail("end", "is not after the start")


def _check_duplicates(session: Session, rows: list[_AssignmentRow], errors: Errors) -> None:
    """The same guard posted to the same site from the same moment twice, in the file or already stored."""
    seen: dict[str, int] = {}
    stored: set[tuple[str, str, datetime]] = set()
    for chunk in chunks(r.guard_id for r in rows if r.guard_id is not None):
        query = select(Assignment.guard_id, Assignment.site_id, Assignment.start).where(Assignment.guard_id.in_(chunk))
        stored.update(tuple(row) for row in session.execute(query))
    for r in rows:
        if r.guard_id is None or r.site_id is None or r.start is None:
            continue
        line = r.fields.row.line
        what = f"{r.guard_id} at {r.site_id} from {r.start:%Y-%m-%d %H:%M} UTC"
        first_seen(errors, seen, f"{r.guard_id}|{r.site_id}|{r.start.isoformat()}", line, "start", what)
        if (r.guard_id, r.site_id, r.start) in stored:
            errors.add(line, "start", f"{what} is already recorded")
