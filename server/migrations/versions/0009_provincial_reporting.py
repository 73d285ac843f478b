"""provincial reporting: outbox of batches, ledger of reported records, a cursor per kind

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-24 18:31:58
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=True),
        sa.Column("province", sa.String(length=64), nullable=False),
        sa.Column("sender_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("records", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("payload_sha256", sa.String(length=64), nullable=True),
        sa.Column("signature", sa.String(length=64), nullable=True),
        sa.Column("receipt", sa.JSON(), nullable=True),
        sa.Column("receipt_id", sa.String(length=128), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("resent_by", sa.String(length=100), nullable=True),
        sa.Column("resent_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'accepted', 'refused', 'failed', 'superseded')",
            name="ck_report_batches_status",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id"),
    )
    op.create_index("ix_report_batches_company_id", "report_batches", ["company_id"])
    op.create_index("ix_report_batches_due", "report_batches", ["status", "next_attempt_at"])
    op.create_index("ix_report_batches_kind", "report_batches", ["kind"])
    op.create_index("ix_report_batches_province", "report_batches", ["province"])
    op.create_table(
        "report_cursors",
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(), nullable=True),
        sa.Column("scanned", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind"),
    )
    op.create_table(
        "report_ledger",
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("record_key", sa.String(length=300), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("record_date", sa.Date(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["report_batches.id"]),
        sa.PrimaryKeyConstraint("kind", "record_key"),
    )
    op.create_index("ix_report_ledger_batch_id", "report_ledger", ["batch_id"])
    op.create_index("ix_report_ledger_kind_date", "report_ledger", ["kind", "record_date"])


def downgrade() -> None:
    op.drop_index("ix_report_ledger_kind_date", table_name="report_ledger")
    op.drop_index("ix_report_ledger_batch_id", table_name="report_ledger")
    op.drop_table("report_ledger")
    op.drop_table("report_cursors")
    op.drop_index("ix_report_batches_province", table_name="report_batches")
    op.drop_index("ix_report_batches_kind", table_name="report_batches")
    op.drop_index("ix_report_batches_due", table_name="report_batches")
    op.drop_index("ix_report_batches_company_id", table_name="report_batches")
    op.drop_table("report_batches")
