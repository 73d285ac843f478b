"""Reporting tables: the outbox of batches, the ledger of what was reported per record, a cursor row per kind."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.models import Base, utcnow

BATCH_STATUSES = ("pending", "sending", "accepted", "refused", "failed", "superseded")
RESENDABLE = ("refused", "failed")


class ReportBatch(Base):
    """One signed upload of up to ``batch_size`` records of one kind and one company (the province's sender).

    ``records`` is the snapshot taken when the batch was built (our field names); the province's items are
    rendered from it at each attempt, so a batch refused for a mapping mistake goes out right once the
    mapping is fixed. ``payload`` is the last body sent, with ID numbers masked even when sent in full.
    """

    __tablename__ = "report_batches"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'accepted', 'refused', 'failed', 'superseded')",
            name="ck_report_batches_status",
        ),
        Index("ix_report_batches_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(24), index=True)
    company_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    province: Mapped[str] = mapped_column(String(64), index=True)
    sender_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    record_count: Mapped[int] = mapped_column(Integer)
    records: Mapped[list] = mapped_column(JSON)
    payload: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    payload_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signature: Mapped[str | None] = mapped_column(String(64), nullable=True)
    receipt: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    receipt_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resent_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    resent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ReportLedger(Base):
    """Per record: the digest and version last put in a batch, and which batch; the change marker of reporting."""

    __tablename__ = "report_ledger"
    __table_args__ = (Index("ix_report_ledger_kind_date", "kind", "record_date"),)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    batch_id: Mapped[int] = mapped_column(ForeignKey("report_batches.id"), index=True)
    record_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    reported_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReportCursor(Base):
    """One row per kind: builders lock it (one builds at a time) and it keeps the last scan's figures."""

    __tablename__ = "report_cursors"
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    # Bumped by every build: a builder writes only if it is still the one it read (see outbox.build).
    generation: Mapped[int] = mapped_column(Integer, default=0)
    built_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    scanned: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    batches: Mapped[int] = mapped_column(Integer, default=0)
