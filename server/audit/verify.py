"""Verify one month of the audit chain against the database as it is now, and give the month's anchor."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from server.audit.chain import (
    MARKER_PREFIX,
    Anchor,
    Entry,
    LinkChecker,
    Problem,
    check_anchor,
    check_delay,
    check_entry_hash,
    check_marker,
    check_record,
    check_unsealed,
    month_anchor,
)
from server.audit.kinds import KINDS, Kind
from server.audit.store import as_entry, site_zones
from server.audit.tables import AuditEntry
from server.models import utcnow

CHUNK = 2_000
DEFAULT_MAX_DELAY = timedelta(minutes=15)


class AnchorMismatch(ValueError):
    """The anchor given is in the chain but belongs to another month: a usage error, not tampering."""


@dataclass
class Report:
    month: str
    site: str | None
    problems: list[Problem] = field(default_factory=list)
    checked: Counter = field(default_factory=Counter)  # sealed records of the month (and site) checked, by kind
    links: int = 0  # chain entries walked
    pending: int = 0  # not sealed yet, but younger than the sealing delay
    backfilled: int = 0  # existed before sealing began: vouched for from then on only
    anchor: Anchor | None = None

    @property
    def intact(self) -> bool:
        return not self.problems


def _bounds(session: Session, month: str) -> tuple[int | None, int | None]:
    row = session.execute(select(func.min(AuditEntry.seq), func.max(AuditEntry.seq)).where(AuditEntry.month == month))
    return tuple(row.one())  # type: ignore[return-value]


def _markers(session: Session) -> list[Entry]:
    query = select(AuditEntry).where(AuditEntry.kind.startswith(MARKER_PREFIX)).order_by(AuditEntry.seq)
    return [as_entry(row) for row in session.scalars(query)]


def _check_sealed(
    session: Session, report: Report, kind: Kind, entries: list[Entry], backfill: int | None, max_delay: timedelta
) -> None:
    query = kind.select().where(kind.table.c.id.in_([e.ref_id for e in entries]))
    rows = {r._mapping["id"]: r._mapping for r in session.execute(query)}
    for entry in entries:
        row = rows.get(entry.ref_id)
        label = kind.label(entry.ref_key, entry.ref_id)
        problem = check_record(entry, None if row is None else kind.facts(row), label)
        if problem is None and row is not None:
            problem = check_delay(entry, row[kind.arrival], max_delay, backfill, label)
            if backfill is not None and entry.ref_id <= backfill:
                report.backfilled += 1
        if problem is not None:
            report.problems.append(problem)
        report.checked[kind.name] += 1


def _walk(
    session: Session,
    report: Report,
    lo: int,
    hi: int,
    backfill: dict[str, int],
    max_delay: timedelta,
    progress: Callable[[int, int], None] | None,
) -> range:
    """Check every link from the entry before the month's first to its last, and the month's records."""
    start = max(1, lo - 1)
    links = LinkChecker(first_seq=start)
    for chunk_start in range(start, hi + 1, CHUNK):
        query = (
            select(AuditEntry)
            .where(AuditEntry.seq >= chunk_start, AuditEntry.seq < min(chunk_start + CHUNK, hi + 1))
            .order_by(AuditEntry.seq)
        )
        mine: dict[str, list[Entry]] = defaultdict(list)
        for entry in map(as_entry, session.scalars(query)):
            found = links.feed(entry)
            report.problems.extend(found)
            if any(p.category == "altered" for p in found):
                continue  # what an altered entry says about its record is moot: one line for it is enough
            if entry.is_marker:
                if (problem := check_marker(entry)) is not None:
                    report.problems.append(problem)
            elif entry.month != report.month:
                continue
            elif entry.kind not in KINDS:
                report.problems.append(
                    Problem("unknown", f"chain entry {entry.seq} is of kind {entry.kind!r}, unknown to this version")
                )
            elif report.site is None or entry.site_id == report.site:
                mine[entry.kind].append(entry)
        for name, entries in mine.items():
            _check_sealed(session, report, KINDS[name], entries, backfill.get(name), max_delay)
        if progress is not None:
            progress(min(chunk_start + CHUNK, hi + 1) - start, hi + 1 - start)
    report.links = links.checked
    return range(start, hi + 1)


def _check_unsealed(session: Session, report: Report, now: datetime, max_delay: timedelta) -> None:
    zone_of = site_zones(session)
    for kind in KINDS.values():
        ids = kind.table.c.id
        query = kind.select().where(
            kind.month_candidates(report.month),
            ~exists().where(AuditEntry.kind == kind.name, AuditEntry.ref_id == ids),
        )
        if report.site is not None and kind.site is not None:
            query = query.where(kind.table.c[kind.site] == report.site)
        for row in (r._mapping for r in session.execute(query.order_by(ids))):
            site_id = row[kind.site] if kind.site else None
            if kind.month(row, zone_of(site_id)) != report.month:
                continue
            problem = check_unsealed(kind.label(kind.key(row), row["id"]), row[kind.arrival], now, max_delay)
            if problem is None:
                report.pending += 1
            else:
                report.problems.append(problem)


def _anchor(session: Session, month: str, hi: int | None) -> Anchor | None:
    if hi is None:
        return None
    last = session.get(AuditEntry, hi)
    counts = dict(
        session.execute(
            select(AuditEntry.kind, func.count())
            .where(AuditEntry.month == month, ~AuditEntry.kind.startswith(MARKER_PREFIX))
            .group_by(AuditEntry.kind)
        ).all()
    )
    return month_anchor(month, None if last is None else as_entry(last), counts)


def verify_month(
    session: Session,
    month: str,
    *,
    site: str | None = None,
    anchor: str | None = None,
    max_delay: timedelta = DEFAULT_MAX_DELAY,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Recompute every sealed record of ``month`` from its row, walk the links, look for unsealed records.

    ``now`` is naive UTC. Raises AnchorMismatch when ``anchor`` is an entry of another month.
    """
    now = now or utcnow()
    report = Report(month, site)
    found = None
    if anchor is not None:
        row = session.scalar(select(AuditEntry).where(AuditEntry.entry_hash == anchor.lower()))
        found = None if row is None else as_entry(row)
        if found is not None and found.month != month:
            raise AnchorMismatch(f"anchor {anchor[:16]}... is the anchor of {found.month}, not {month}")
    markers = _markers(session)
    backfill = {m.ref_key: m.ref_id for m in markers}
    lo, hi = _bounds(session, month)
    walked = range(0)
    if lo is not None and hi is not None:
        walked = _walk(session, report, lo, hi, backfill, max_delay, progress)
    for entry in markers:  # wherever they are: they decide which records count as backfilled
        if entry.seq not in walked:
            if (problem := check_marker(entry) or check_entry_hash(entry)) is not None:
                report.problems.append(problem)
    _check_unsealed(session, report, now, max_delay)
    if anchor is not None and (problem := check_anchor(anchor, found)) is not None:
        report.problems.append(problem)
    report.anchor = _anchor(session, month, hi)
    return report
