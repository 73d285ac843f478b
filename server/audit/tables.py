"""The audit chain table: one row per sealed record, each linked to the one before by its hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models import Base


class AuditEntry(Base):
    """``seq`` is gap-free from 1; a unique ``prev_hash`` as well as a unique ``seq`` means no fork can be stored."""

    __tablename__ = "audit_chain"
    __table_args__ = (
        UniqueConstraint("kind", "ref_id", name="uq_audit_chain_kind_ref"),
        UniqueConstraint("prev_hash", name="uq_audit_chain_prev_hash"),
        UniqueConstraint("entry_hash", name="uq_audit_chain_entry_hash"),
        Index("ix_audit_chain_month_seq", "month", "seq"),
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40))
    ref_id: Mapped[int] = mapped_column(BigInteger)
    # A natural key (an event's UUID...): it still names the record after its row was deleted.
    ref_key: Mapped[str] = mapped_column(String(200))
    month: Mapped[str] = mapped_column(String(7))
    site_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    record_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime] = mapped_column(DateTime)
