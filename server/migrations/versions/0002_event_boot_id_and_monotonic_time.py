"""event boot id and monotonic time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 16:43:19.569802
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("boot_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("monotonic_s", sa.Float(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("monotonic_s")
        batch_op.drop_column("boot_id")
