"""Which records to report and in which batches: pure functions over snapshots and the ledger."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from server.reporting.sources import SourceRecord


@dataclass(frozen=True)
class LedgerEntry:
    """What was last reported for one record key."""

    digest: str
    version: int
    deleted: bool = False
    record_date: date | None = None
    batch_id: int | None = None


@dataclass(frozen=True)
class Change:
    """A record to put in a batch: a new or changed one (upsert), or one that no longer exists (delete)."""

    key: str
    op: str
    version: int
    digest: str
    company_id: str | None
    record_date: date | None
    fields: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "op": self.op, "version": self.version, "digest": self.digest, "fields": self.fields}


DELETED_DIGEST = "deleted"


@dataclass(frozen=True)
class Changes:
    changes: list[Change]
    new: int
    changed: int
    deleted: int


def changes(
    records: Iterable[SourceRecord], ledger: Mapping[str, LedgerEntry], tombstones_from: date | None = None
) -> Changes:
    """Records never reported, or whose digest differs from the last report; with ``tombstones_from``,
    also the reported records dated from then on that are gone (a recompute can merge or drop a record).
    Versions count up per key, so a receiver can ignore an older version arriving late."""
    out: list[Change] = []
    new = changed = 0
    seen: set[str] = set()
    for record in records:
        seen.add(record.key)
        last = ledger.get(record.key)
        digest = record.digest
        if last is not None and not last.deleted and last.digest == digest:
            continue
        if last is None:
            new += 1
        else:
            changed += 1
        version = 1 if last is None else last.version + 1
        out.append(Change(record.key, "upsert", version, digest, record.company_id, record.record_date, record.fields))
    deleted = 0
    if tombstones_from is not None:
        for key, last in sorted(ledger.items()):
            if key in seen or last.deleted or last.record_date is None or last.record_date < tombstones_from:
                continue
            deleted += 1
            out.append(Change(key, "delete", last.version + 1, DELETED_DIGEST, None, last.record_date, None))
    return Changes(out, new, changed, deleted)


def group(items: list[Change], batch_size: int) -> list[tuple[str | None, list[Change]]]:
    """Per company (the province's sender), in batches of at most ``batch_size``, in a stable order."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    by_company: dict[str | None, list[Change]] = {}
    for item in items:
        by_company.setdefault(item.company_id, []).append(item)
    batches = []
    for company_id in sorted(by_company, key=lambda c: (c is not None, c or "")):
        ordered = sorted(by_company[company_id], key=lambda c: (c.record_date or date.min, c.key))
        for start in range(0, len(ordered), batch_size):
            batches.append((company_id, ordered[start : start + batch_size]))
    return batches
