"""Database helpers shared by the sealer and the verifier: the chain lock, its head, rows as plain entries."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from server.audit.chain import Entry
from server.audit.tables import AuditEntry
from server.duty.shifts import zone
from server.models import Site

ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(Entry))
UTC_ZONE = ZoneInfo("UTC")


def lock_chain(session: Session) -> None:
    """Hold the chain for this transaction: one sealer at a time, across every server process.

    PostgreSQL: a transaction-level advisory lock keyed on the table's oid (so each schema has its own).
    SQLite: a write that matches nothing takes the database's write lock; it must be the transaction's
    first statement, since a transaction that has read already cannot take it without failing.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(CAST(CAST('audit_chain' AS regclass) AS oid)::bigint)"))
    else:
        session.execute(update(AuditEntry).where(AuditEntry.seq < 0).values(seq=AuditEntry.seq))


def as_entry(row: Any) -> Entry:
    return Entry(**{name: getattr(row, name) for name in ENTRY_FIELDS})


def entry_values(entry: Entry) -> dict[str, Any]:
    return dataclasses.asdict(entry)


def head(session: Session) -> Entry | None:
    row = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    return None if row is None else as_entry(row)


def site_zones(session: Session) -> Callable[[str | None], ZoneInfo]:
    """Each site's time zone (UTC for an unknown site or a zone this machine does not know)."""
    zones: dict[str, ZoneInfo] = {}
    for site_id, name in session.execute(select(Site.site_id, Site.timezone)):
        try:
            zones[site_id] = zone(name)
        except ValueError:
            zones[site_id] = UTC_ZONE
    return lambda site_id: zones.get(site_id or "", UTC_ZONE)
