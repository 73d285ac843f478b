"""Append committed records to the audit chain, in batches, one sealer at a time (see store.lock_chain).

Sealing runs after ingest has committed, never inside it: ingest stays as fast as it was, and a record is
chained within one monitor round. Per kind, records are taken in id order; a round looks back
``SLACK_IDS`` ids behind the newest sealed one, for rows whose transaction committed after later ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, insert, select
from sqlalchemy.orm import Session

from server.audit.chain import MARKER_PREFIX, Entry, Sealable, link, marker, record_hash
from server.audit.kinds import KINDS, Kind
from server.audit.store import entry_values, head, lock_chain, site_zones
from server.audit.tables import AuditEntry
from server.models import utcnow

SLACK_IDS = 10_000
BATCH = 2_000


@dataclass
class SealResult:
    sealed: dict[str, int] = field(default_factory=dict)
    head: Entry | None = None

    @property
    def total(self) -> int:
        return sum(self.sealed.values())


def _unsealed(kind: Kind, after: int):
    ids = kind.table.c.id
    return kind.select().where(ids > after, ~exists().where(AuditEntry.kind == kind.name, AuditEntry.ref_id == ids))


def _floor(session: Session, kind: Kind, full: bool) -> int:
    if full:
        return 0
    newest = session.scalar(select(func.max(AuditEntry.ref_id)).where(AuditEntry.kind == kind.name))
    return max(0, (newest or 0) - SLACK_IDS)


def pending_count(session: Session, full: bool = False) -> int:
    """How many records the next seal_pending would append (for a progress bar)."""
    total = 0
    for kind in KINDS.values():
        query = _unsealed(kind, _floor(session, kind, full)).subquery()
        total += session.scalar(select(func.count()).select_from(query)) or 0
    return total


def seal_pending(
    session: Session,
    *,
    batch: int = BATCH,
    full: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SealResult:
    """Seal every committed record not in the chain yet; commits after each batch.

    Give it a session with no transaction open (the chain lock must be a transaction's first statement).
    ``full`` looks at every row instead of the recent ones: use it after ``audit verify`` reports records
    that were never sealed, once they are explained.
    """
    result = SealResult({name: 0 for name in KINDS})
    after: dict[str, int] = {}
    marked: set[str] = set()
    while True:
        lock_chain(session)
        last = head(session)
        now = utcnow()
        zone_of = site_zones(session)  # a small table; read again in case a site was added meanwhile
        items = _markers(session, marked, f"{now:%Y-%m}")
        more = False
        for kind in KINDS.values():
            if kind.name not in after:
                after[kind.name] = _floor(session, kind, full)
            query = _unsealed(kind, after[kind.name]).order_by(kind.table.c.id).limit(batch)
            rows = [r._mapping for r in session.execute(query)]
            more = more or len(rows) == batch
            items += [_sealable(kind, row, zone_of) for row in rows]
            if rows:
                after[kind.name] = rows[-1]["id"]
                result.sealed[kind.name] += len(rows)
        entries = link(last, items, now)
        if entries:
            session.execute(insert(AuditEntry), [entry_values(e) for e in entries])
        session.commit()  # releases the lock
        result.head = entries[-1] if entries else last
        if progress is not None:
            progress(result.total)
        if not more:
            return result


def _markers(session: Session, marked: set[str], month: str) -> list[Sealable]:
    """A start marker for each kind sealed for the first time, naming the rows that predate the chain."""
    items = []
    for kind in KINDS.values():
        if kind.name in marked:
            continue
        if not session.scalar(select(exists().where(AuditEntry.kind == MARKER_PREFIX + kind.name))):
            items.append(marker(kind.name, session.scalar(select(func.max(kind.table.c.id))) or 0, month))
        marked.add(kind.name)
    return items


def _sealable(kind: Kind, row: Mapping[str, Any], zone_of: Callable[[str | None], ZoneInfo]) -> Sealable:
    site_id = row[kind.site] if kind.site else None
    return Sealable(
        kind.name,
        row["id"],
        kind.key(row),
        kind.month(row, zone_of(site_id)),
        site_id,
        record_hash(kind.name, kind.facts(row)),
    )
