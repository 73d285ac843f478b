"""Bulk import of guards from CSV or XLSX, and what imports share: every row is checked first, then all or none."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from protocol.cards import mask_card_number, normalise_card_number
from server.credentials import new_credential
from server.ids import ResidentId, id_number_columns, validate_resident_id
from server.import_fields import TEXT_HINT, Errors, Fields, RowError
from server.lookup_digests import LookupKeys, lookup_keys
from server.models import Assignment, Company, Credential, Guard, Site, utcnow
from server.tabular import Table, TableError, read_table, read_table_file

GUARD_COLUMNS = (
    "guard_id",
    "name",
    "id_number",
    "employer_company_id",
    "certificate_number",
    "certificate_issued_on",
    "certificate_valid_until",
    "site_ids",
    "face_consent",
)
GUARD_REQUIRED = ("guard_id", "name", "id_number")
# Rows per flush, and ids per IN (...) query: well under every driver's parameter limit.
CHUNK = 500

Progress = Callable[[int, int], None]
Source = bytes | Path


class ImportRejected(Exception):
    """Nothing was imported; ``errors`` says which line and column to fix, and why."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} problem(s) found; nothing was imported")
        self.errors = errors


@dataclass(frozen=True)
class ImportResult:
    imported: int
    dry_run: bool


class Ticker:
    """Reports (done, total): every row once when checked and, unless a dry run, once more when written."""

    def __init__(self, progress: Progress | None, rows: int, dry_run: bool):
        self.progress, self.done, self.total = progress, 0, rows * (1 if dry_run else 2)

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def load_table(source: Source, filename: str, columns: tuple[str, ...], required: tuple[str, ...]) -> Table:
    try:
        table = read_table_file(source) if isinstance(source, Path) else read_table(source, filename)
    except TableError as exc:
        raise ImportRejected([RowError(exc.line, "", str(exc))]) from None
    errors = Errors()
    for name in table.columns:
        if name not in columns:
            errors.add(table.header_line, name, f"unknown column; the columns are {', '.join(columns)}")
    for name in required:
        if name not in table.columns:
            errors.add(table.header_line, name, "required column is missing from the header")
    if errors:
        raise ImportRejected(errors.report())
    return table


def chunks(values: Iterable[str]) -> Iterator[list[str]]:
    unique = sorted(set(values))
    for i in range(0, len(unique), CHUNK):
        yield unique[i : i + CHUNK]


def lookup(session: Session, key: InstrumentedAttribute, value: InstrumentedAttribute, keys: Iterable[str]) -> dict:
    """``{key: value}`` for the rows whose ``key`` is among ``keys`` (queried in chunks)."""
    found: dict = {}
    for chunk in chunks(k for k in keys if k is not None):
        found.update(session.execute(select(key, value).where(key.in_(chunk))).all())
    return found


def flush_or_reject(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        message = "the database changed during the import (someone added the same guard or number); run it again"
        raise ImportRejected([RowError(0, "", message)]) from None


@dataclass
class _GuardRow:
    line: int
    guard_id: str | None
    name: str | None
    resident: ResidentId | None
    company_id: str | None
    certificate: str | None
    issued_on: date | None
    valid_until: date | None
    site_ids: list[str] = field(default_factory=list)
    face_consent: bool = False


def import_guards(
    session: Session,
    cipher: Fernet,
    source: Source,
    filename: str = "",
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    today: date | None = None,
) -> ImportResult:
    """Add every guard in the file, with ID number, certificate and postings; the caller commits.

    Raises ImportRejected, with nothing added to the session, if any row is bad.
    """
    table = load_table(source, filename, GUARD_COLUMNS, GUARD_REQUIRED)
    today = today or utcnow().date()
    tick, errors = Ticker(progress, len(table.rows), dry_run), Errors()
    rows = []
    for row in table.rows:
        rows.append(_parse_guard(Fields(row, errors), today))
        tick()
    site_companies = _check_guards(session, lookup_keys(cipher), rows, errors)
    if errors:
        raise ImportRejected(errors.report(table.columns))
    if not dry_run:
        _write_guards(session, cipher, rows, site_companies, tick)
    return ImportResult(imported=len(rows), dry_run=dry_run)


def _write_guards(
    session: Session, cipher: Fernet, rows: list[_GuardRow], site_companies: dict[str, str | None], tick: Ticker
) -> None:
    now = utcnow()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        for r in chunk:
            identity = id_number_columns(cipher, r.resident)  # type: ignore[arg-type]
            consent = now if r.face_consent else None
            session.add(
                Guard(guard_id=r.guard_id, name=r.name, company_id=r.company_id, face_consent_at=consent, **identity)
            )
        flush_or_reject(session)  # guards first: the rows below refer to them
        for r in chunk:
            if r.certificate is not None:
                dates = {"issued_on": r.issued_on, "valid_until": r.valid_until}
                session.add(new_credential(cipher, r.guard_id, r.certificate, "certificate", **dates))  # type: ignore[arg-type]
            for site_id in r.site_ids:
                company = r.company_id or site_companies.get(site_id)
                session.add(Assignment(guard_id=r.guard_id, site_id=site_id, company_id=company, start=now))
            tick()
        flush_or_reject(session)


def _parse_guard(f: Fields, today: date) -> _GuardRow:
    resident = None
    raw_id = f.raw("id_number")
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        # Whatever its size: Excel may write a rounded 18-digit number without an exponent.
        f.fail("id_number", f"is stored as a number in the sheet, which keeps only 15 digits; {TEXT_HINT}")
    elif (text := f.text("id_number", required=True, max_chars=40)) is not None:
        try:
            resident = validate_resident_id(text, today)
        except ValueError as exc:
            f.fail("id_number", str(exc))
    certificate = None
    if (number := f.text("certificate_number", max_chars=64)) is not None:
        try:
            certificate = normalise_card_number(number)
        except ValueError as exc:
            f.fail("certificate_number", str(exc))
    issued_on, valid_until = f.date("certificate_issued_on"), f.date("certificate_valid_until")
    if number is None and (issued_on or valid_until):
        f.fail("certificate_number", "is required when certificate dates are given")
    if issued_on is not None and issued_on > today:
        f.fail("certificate_issued_on", f"{issued_on} is in the future")
    if issued_on is not None and valid_until is not None and valid_until < issued_on:
        f.fail("certificate_valid_until", f"{valid_until} is before the issue date {issued_on}")
    return _GuardRow(
        line=f.row.line,
        guard_id=f.ident("guard_id", required=True),
        name=f.text("name", required=True),
        resident=resident,
        company_id=f.ident("employer_company_id"),
        certificate=certificate,
        issued_on=issued_on,
        valid_until=valid_until,
        site_ids=f.ident_list("site_ids"),
        face_consent=f.yes_no("face_consent"),
    )


def first_seen(errors: Errors, seen: dict[str, int], key: str | None, line: int, column: str, what: str) -> None:
    if key is None:
        return
    if key in seen:
        errors.add(line, column, f"{what} is also on line {seen[key]}")
    else:
        seen[key] = line


def _check_guards(session: Session, keys: LookupKeys, rows: list[_GuardRow], errors: Errors) -> dict[str, str | None]:
    """In-file duplicates and conflicts with the database; returns each named site's guarding company."""
    ids, people, certificates = {}, {}, {}
    for r in rows:
        first_seen(errors, ids, r.guard_id, r.line, "guard_id", f"guard {r.guard_id}")
        person = keys.id_number(r.resident.number) if r.resident else None
        first_seen(
            errors, people, person, r.line, "id_number", f"the same ID number ({r.resident and r.resident.masked})"
        )
        certificate = keys.credential_number(r.certificate) if r.certificate else None
        masked = r.certificate and mask_card_number(r.certificate)
        first_seen(errors, certificates, certificate, r.line, "certificate_number", f"certificate {masked}")
    existing = lookup(session, Guard.guard_id, Guard.guard_id, ids)
    owners = lookup(session, Guard.id_number_hmac, Guard.guard_id, people)
    holders = lookup(session, Credential.number_hmac, Credential.guard_id, certificates)
    companies = lookup(session, Company.company_id, Company.company_id, (r.company_id for r in rows))
    sites = lookup(session, Site.site_id, Site.company_id, (s for r in rows for s in r.site_ids))
    for r in rows:
        if r.guard_id in existing:
            errors.add(r.line, "guard_id", f"guard {r.guard_id} already exists")
        if r.resident is not None and (owner := owners.get(keys.id_number(r.resident.number))):
            errors.add(r.line, "id_number", f"ID number {r.resident.masked} is already registered to guard {owner}")
        if r.certificate is not None and (holder := holders.get(keys.credential_number(r.certificate))):
            masked = mask_card_number(r.certificate)
            errors.add(r.line, "certificate_number", f"{masked} is already registered to guard {holder}")
        if r.company_id is not None and r.company_id not in companies:
            errors.add(
                r.line, "employer_company_id", f"no company {r.company_id}; add it with 'guardpost companies add'"
            )
        for site_id in r.site_ids:
            if site_id not in sites:
                errors.add(r.line, "site_ids", f"no site {site_id}; add it with 'guardpost sites add'")
    return sites
