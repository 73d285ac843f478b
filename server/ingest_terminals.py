"""A batch's terminals as plain rows: locked with one Core read, written back with one UPDATE per changed set.

Ingest touches every terminal of every batch (last seen, last seq); as ORM objects, loading and flushing
them cost more than the events' own insert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select, update

from server.models import Terminal
from server.sql_batch import among, listed

TABLE = Terminal.__table__
WRITABLE = ("online", "last_seen_at", "last_seq", "heartbeat")
# Executed with the changed columns as parameters, which become the SET clause.
_UPDATE = update(TABLE).where(TABLE.c.device_id == bindparam("b_device_id"))


@dataclass(slots=True, eq=False)
class TerminalRow:
    """The columns ingest reads and writes; change the WRITABLE ones and ``write`` stores what changed."""

    device_id: str
    site_id: str
    secret: str
    enabled: bool
    online: bool
    last_seen_at: datetime | None
    last_seq: int
    heartbeat: dict[str, Any] | None
    loaded: tuple[Any, ...] = field(default=(), repr=False)

    def changes(self) -> dict[str, Any]:
        now = tuple(getattr(self, name) for name in WRITABLE)
        return {name: value for name, value, was in zip(WRITABLE, now, self.loaded, strict=True) if value != was}


def lock(connection: Connection, device_ids: Iterable[str]) -> dict[str, TerminalRow]:
    """These terminals' rows, locked in a fixed order so concurrent ingest processes queue instead of deadlocking.

    On SQLite the caller has taken the database's write lock already (BEGIN IMMEDIATE).
    """
    ids = sorted(device_ids)
    if not ids:
        return {}
    dialect = connection.dialect.name
    rows = connection.execute(_lock_query(dialect), {"ids": listed(ids, dialect)})
    found = {}
    for r in rows:
        row = TerminalRow(*r[:6], r.last_seq or 0, r.heartbeat)
        row.loaded = tuple(getattr(row, name) for name in WRITABLE)
        found[row.device_id] = row
    return found


def write(connection: Connection, terminals: Iterable[TerminalRow]) -> None:
    """One executemany per set of changed columns (usually one: last seen and last seq)."""
    terminals = list(terminals)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for terminal in terminals:
        changes = terminal.changes()
        if changes:
            groups[tuple(sorted(changes))].append({"b_device_id": terminal.device_id, **changes})
    for params in groups.values():
        connection.execute(_UPDATE, params)
    for terminal in terminals:
        terminal.loaded = tuple(getattr(terminal, name) for name in WRITABLE)


@cache
def _lock_query(dialect: str) -> Select:
    columns = [TABLE.c.device_id, TABLE.c.site_id, TABLE.c.secret, TABLE.c.enabled, TABLE.c.online]
    columns += [TABLE.c.last_seen_at, TABLE.c.last_seq, TABLE.c.heartbeat]
    query = select(*columns).where(among(TABLE.c.device_id, "ids", dialect)).order_by(TABLE.c.device_id)
    return query.with_for_update()
