"""Who sees which batches, and a batch as JSON for the API, the page and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, false, true

from server.reporting.tables import RESENDABLE, ReportBatch
from server.scope import Scope


def visible(scope: Scope) -> ColumnElement[bool]:
    """Batches are per company (the province's sender): a manager sees the company's, police their
    province's, admin all; a supervisor's sites are not a sender, so none."""
    if scope.everything:
        return true()
    if scope.role == "police" and scope.jurisdiction:
        return ReportBatch.province == scope.jurisdiction
    if scope.role == "manager" and scope.company_id:
        return ReportBatch.company_id == scope.company_id
    return false()


def may_resend(scope: Scope, batch: ReportBatch) -> bool:
    if batch.status not in RESENDABLE:
        return False
    return scope.everything or (scope.role == "manager" and batch.company_id == scope.company_id)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(tzinfo=UTC).isoformat()


def batch_summary(batch: ReportBatch) -> dict[str, Any]:
    receipt = batch.receipt or {}
    rejected = receipt.get("rejected") if isinstance(receipt.get("rejected"), list) else []
    return {
        "id": batch.id,
        "batch_id": batch.batch_id,
        "kind": batch.kind,
        "company_id": batch.company_id,
        "province": batch.province,
        "sender_id": batch.sender_id,
        "status": batch.status,
        "records": batch.record_count,
        "attempts": batch.attempts,
        "next_attempt_at": _time(batch.next_attempt_at) if batch.status in ("pending", "sending") else None,
        "last_error": batch.last_error,
        "receipt_id": batch.receipt_id,
        "accepted": receipt.get("accepted"),
        "rejected": rejected,
        "created_at": _time(batch.created_at),
        "last_attempt_at": _time(batch.last_attempt_at),
        "finished_at": _time(batch.finished_at),
        "resent_by": batch.resent_by,
        "resent_at": _time(batch.resent_at),
    }
