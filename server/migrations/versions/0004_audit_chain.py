"""audit chain

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("ref_id", sa.BigInteger(), nullable=False),
        sa.Column("ref_key", sa.String(length=200), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("entry_hash", name="uq_audit_chain_entry_hash"),
        sa.UniqueConstraint("kind", "ref_id", name="uq_audit_chain_kind_ref"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_chain_prev_hash"),
    )
    with op.batch_alter_table("audit_chain", schema=None) as batch_op:
        batch_op.create_index("ix_audit_chain_month_seq", ["month", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_chain", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_chain_month_seq")
    op.drop_table("audit_chain")
