"""The outbox in the database: build batches from changed records in one transaction, claim, finish, re-send."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import utcnow
from server.reporting.config import ReportingConfig
from server.reporting.plan import Change, LedgerEntry, changes, group
from server.reporting.sources import snapshot
from server.reporting.tables import RESENDABLE, ReportBatch, ReportCursor, ReportLedger


class ResendError(ValueError):
    """A batch that cannot be re-sent (unknown, or not refused or failed)."""


@dataclass(frozen=True)
class Built:
    kind: str
    scanned: int
    new: int
    changed: int
    deleted: int
    batch_ids: list[int]
    conflict: bool = False


def _generation(session: Session, kind: str) -> int:
    cursor = session.get(ReportCursor, kind)
    if cursor is not None:
        return cursor.generation
    session.add(ReportCursor(kind=kind, generation=0))
    try:
        session.commit()
    except IntegrityError:  # another builder created it first: use theirs
        session.rollback()
        return session.get(ReportCursor, kind).generation
    return 0


def _ledger(session: Session, kind: str, since: date | None) -> dict[str, LedgerEntry]:
    t = ReportLedger.__table__.c
    query = select(t.record_key, t.digest, t.version, t.deleted, t.record_date, t.batch_id).where(t.kind == kind)
    if since is not None:
        query = query.where(t.record_date >= since)
    return {key: LedgerEntry(*rest) for key, *rest in session.execute(query)}


def _with_last_fields(session: Session, items: list[Change], ledger: dict[str, LedgerEntry]) -> list[Change]:
    """A tombstone names the record as it was last sent (same company, same key items)."""
    batches: dict[int, ReportBatch] = {}
    out = []
    for item in items:
        if item.op != "delete":
            out.append(item)
            continue
        batch_pk = ledger[item.key].batch_id
        if batch_pk not in batches:
            batches[batch_pk] = session.get(ReportBatch, batch_pk)
        previous = batches[batch_pk]
        fields = next((r["fields"] for r in previous.records if r["key"] == item.key and r["fields"]), None)
        out.append(replace(item, company_id=previous.company_id, fields=fields))
    return out


def build(session: Session, config: ReportingConfig, kind: str, now: datetime) -> Built:
    """Snapshot ``kind``, and in one transaction add batches for what changed and move the ledger on.

    Read first without a lock; then bump the kind's cursor generation only if no other builder did since
    the read (compare-and-set): that row write is the lock, held only while the batches are written. A
    crash before the commit leaves nothing behind, so every change is put in exactly one batch.
    """
    seen = _generation(session, kind)
    since = now.date() - timedelta(days=config.duty_lookback_days) if kind == "duty_logs" else None
    records = snapshot(
        session,
        kind,
        config.province,
        now.date(),
        config.duty_lookback_days,
        include_in_progress=config.report_in_progress,
        finding_kinds=config.finding_kinds,
    )
    ledger = _ledger(session, kind, since)
    found = changes(records, ledger, tombstones_from=since)
    locked = session.execute(
        update(ReportCursor)
        .where(ReportCursor.kind == kind, ReportCursor.generation == seen)
        .values(generation=seen + 1)
        .execution_options(synchronize_session=False)
    )
    if locked.rowcount != 1:
        session.rollback()
        return Built(kind, len(records), 0, 0, 0, [], conflict=True)
    items = _with_last_fields(session, found.changes, ledger)
    batch_ids, ledger_new, ledger_old = [], [], []
    for company_id, chunk in group(items, config.batch_size):
        batch = ReportBatch(
            batch_id=str(uuid.uuid4()),
            kind=kind,
            company_id=company_id,
            province=config.province,
            sender_id=config.sender_for(company_id),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            record_count=len(chunk),
            records=[c.as_json() for c in chunk],
            created_at=now,
            updated_at=now,
        )
        session.add(batch)
        session.flush()
        batch_ids.append(batch.id)
        for c in chunk:
            row = {
                "kind": kind,
                "record_key": c.key,
                "digest": c.digest,
                "version": c.version,
                "batch_id": batch.id,
                "record_date": c.record_date,
                "deleted": c.op == "delete",
                "reported_at": now,
            }
            (ledger_old if c.key in ledger else ledger_new).append(row)
    if ledger_new:
        session.execute(insert(ReportLedger), ledger_new)
    if ledger_old:
        session.execute(update(ReportLedger), ledger_old)  # by primary key (kind, record_key)
    session.execute(
        update(ReportCursor)
        .where(ReportCursor.kind == kind)
        .values(
            built_at=now,
            scanned=len(records),
            new=found.new,
            changed=found.changed,
            deleted=found.deleted,
            batches=ReportCursor.batches + len(batch_ids),
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return Built(kind, len(records), found.new, found.changed, found.deleted, batch_ids)


def due(session: Session, now: datetime, limit: int = 100) -> list[ReportBatch]:
    """Pending batches whose time has come, and sends whose lease ran out (the sender died), oldest first."""
    return list(
        session.scalars(
            select(ReportBatch)
            .where(ReportBatch.status.in_(("pending", "sending")), ReportBatch.next_attempt_at <= now)
            .order_by(ReportBatch.id)
            .limit(limit)
        )
    )


def next_due_at(session: Session) -> datetime | None:
    return session.scalar(
        select(func.min(ReportBatch.next_attempt_at)).where(ReportBatch.status.in_(("pending", "sending")))
    )


def live_keys(session: Session, batch: ReportBatch) -> set[str]:
    """Records of the batch not since superseded by a newer batch: only these are sent."""
    return set(
        session.scalars(
            select(ReportLedger.record_key).where(ReportLedger.kind == batch.kind, ReportLedger.batch_id == batch.id)
        )
    )


def claim(session: Session, batch: ReportBatch, now: datetime, lease_s: float, **sent) -> bool:
    """Mark the batch as being sent, counting the attempt, unless another sender changed it meanwhile.

    ``next_attempt_at`` becomes the lease: if this process dies mid-send, the batch is due again after it.
    ``sent`` holds payload, payload_sha256 and signature of the body about to go out.
    """
    result = session.execute(
        update(ReportBatch)
        .where(ReportBatch.id == batch.id, ReportBatch.status == batch.status, ReportBatch.attempts == batch.attempts)
        .values(
            status="sending",
            attempts=batch.attempts + 1,
            last_attempt_at=now,
            next_attempt_at=now + timedelta(seconds=lease_s),
            updated_at=now,
            **sent,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def finish(session: Session, batch_pk: int, attempts: int, now: datetime, status: str, **values) -> bool:
    """Record an attempt's outcome, if the batch is still this sender's claim."""
    final = status in ("accepted", "refused", "failed", "superseded")
    result = session.execute(
        update(ReportBatch)
        .where(ReportBatch.id == batch_pk, ReportBatch.status == "sending", ReportBatch.attempts == attempts)
        .values(status=status, updated_at=now, finished_at=now if final else None, **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def give_up(session: Session, batch: ReportBatch, now: datetime, status: str, error: str) -> bool:
    """Close a batch without sending (nothing left to send, or no attempts left after an interrupted send)."""
    result = session.execute(
        update(ReportBatch)
        .where(ReportBatch.id == batch.id, ReportBatch.status == batch.status, ReportBatch.attempts == batch.attempts)
        .values(status=status, updated_at=now, finished_at=now, next_attempt_at=None, last_error=error)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def find(session: Session, ref: str | int) -> ReportBatch | None:
    """By number (as shown on the page) or by batch id (the UUID the province sees)."""
    text = str(ref).strip()
    if text.isdigit():
        return session.get(ReportBatch, int(text))
    return session.scalar(select(ReportBatch).where(ReportBatch.batch_id == text))


def resend(session: Session, batch: ReportBatch, by: str, now: datetime | None = None) -> ReportBatch:
    """Queue a refused or failed batch again, with a fresh set of attempts; the caller commits."""
    if batch.status not in RESENDABLE:
        raise ResendError(f"batch {batch.id} is {batch.status}; only refused or failed batches can be re-sent")
    now = now or utcnow()
    batch.status, batch.attempts, batch.next_attempt_at = "pending", 0, now
    batch.finished_at, batch.updated_at = None, now
    batch.resent_by, batch.resent_at = by, now
    session.flush()
    return batch


def status_counts(session: Session, scope_clause=None) -> dict[str, int]:
    query = select(ReportBatch.status, func.count()).group_by(ReportBatch.status)
    if scope_clause is not None:
        query = query.where(scope_clause)
    return dict(session.execute(query).all())


def problems(session: Session) -> int:
    """Batches that need a person: refused or failed."""
    query = select(func.count()).select_from(ReportBatch).where(ReportBatch.status.in_(RESENDABLE))
    return session.scalar(query) or 0
