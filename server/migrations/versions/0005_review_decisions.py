"""review decisions on borderline matches

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("guard_id", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("decision IN ('confirmed', 'rejected')", name="ck_review_decisions_decision"),
        sa.ForeignKeyConstraint(["finding_id"], ["findings.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_review_decisions_finding_id", "review_decisions", ["finding_id"])
    op.create_index("ix_review_decisions_guard_id", "review_decisions", ["guard_id"])
    op.create_index("ix_review_decisions_site_id", "review_decisions", ["site_id"])


def downgrade() -> None:
    op.drop_index("ix_review_decisions_site_id", table_name="review_decisions")
    op.drop_index("ix_review_decisions_guard_id", table_name="review_decisions")
    op.drop_index("ix_review_decisions_finding_id", table_name="review_decisions")
    op.drop_table("review_decisions")
