"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-24 16:29:10.164770
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "companies",
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("filing_status", sa.String(length=16), nullable=False),
        sa.Column("home_province", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("filing_status IN ('filed', 'pending', 'revoked')", name="ck_companies_filing_status"),
        sa.PrimaryKeyConstraint("company_id"),
        sa.UniqueConstraint("credit_code"),
    )
    op.create_table(
        "duty_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guard_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("shift_id", sa.String(length=64), nullable=True),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=64), nullable=True),
        sa.Column("new_value", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("corrected_by", sa.String(length=100), nullable=False),
        sa.Column("corrected_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("duty_corrections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duty_corrections_guard_id"), ["guard_id"], unique=False)

    op.create_table(
        "duty_dirty",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("marked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("site_id", "date"),
    )
    op.create_table(
        "duty_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guard_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("post_id", sa.String(length=64), nullable=True),
        sa.Column("shift_id", sa.String(length=64), nullable=True),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("first_in", sa.DateTime(), nullable=True),
        sa.Column("last_out", sa.DateTime(), nullable=True),
        sa.Column("minutes_worked", sa.Integer(), nullable=False),
        sa.Column("overtime_minutes", sa.Integer(), nullable=False),
        sa.Column("late_minutes", sa.Integer(), nullable=False),
        sa.Column("early_leave_minutes", sa.Integer(), nullable=False),
        sa.Column("check_in_method", sa.String(length=16), nullable=True),
        sa.Column("check_in_distance", sa.Float(), nullable=True),
        sa.Column("punch_ids", sa.JSON(), nullable=False),
        sa.Column("corrected", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("duty_records", schema=None) as batch_op:
        batch_op.create_index("ix_duty_guard_date", ["guard_id", "date"], unique=False)
        batch_op.create_index("ix_duty_site_date", ["site_id", "date"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("guard_id", sa.String(length=64), nullable=True),
        sa.Column("captured_at", sa.DateTime(), nullable=False),
        sa.Column("clock_synced", sa.Boolean(), nullable=False),
        sa.Column("corrected_at", sa.DateTime(), nullable=True),
        sa.Column("clock_status", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("margin", sa.Float(), nullable=True),
        sa.Column("liveness", sa.String(length=16), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_captured", ["captured_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_device_id"), ["device_id"], unique=False)
        batch_op.create_index("ix_events_guard_captured", ["guard_id", "captured_at"], unique=False)
        batch_op.create_index("ix_events_site_captured", ["site_id", "captured_at"], unique=False)

    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("guard_id", sa.String(length=64), nullable=True),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_findings_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_findings_guard_id"), ["guard_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_findings_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_findings_site_id"), ["site_id"], unique=False)

    op.create_table(
        "rejects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("topic", sa.String(length=300), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("payload_excerpt", sa.Text(), nullable=False),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rejects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejects_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rejects_received_at"), ["received_at"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "company_cross_region_filings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=64), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.company_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "province", name="uq_cross_region_company_province"),
    )
    with op.batch_alter_table("company_cross_region_filings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_company_cross_region_filings_company_id"), ["company_id"], unique=False)

    op.create_table(
        "guards",
        sa.Column("guard_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("id_number_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("id_number_sha256", sa.String(length=64), nullable=True),
        sa.Column("id_number_masked", sa.String(length=32), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=8), nullable=True),
        sa.Column("company_id", sa.String(length=64), nullable=True),
        sa.Column("face_consent_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("sex IN ('male', 'female')", name="ck_guards_sex"),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.company_id"],
        ),
        sa.PrimaryKeyConstraint("guard_id"),
        sa.UniqueConstraint("id_number_sha256"),
    )
    with op.batch_alter_table("guards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guards_company_id"), ["company_id"], unique=False)

    op.create_table(
        "sites",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=300), server_default="", nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=True),
        sa.Column("province", sa.String(length=64), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("card_salt", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.company_id"],
        ),
        sa.PrimaryKeyConstraint("site_id"),
    )
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sites_company_id"), ["company_id"], unique=False)

    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guard_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=True),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.company_id"],
        ),
        sa.ForeignKeyConstraint(
            ["guard_id"],
            ["guards.guard_id"],
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.site_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assignments_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_assignments_guard_id"), ["guard_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_assignments_site_id"), ["site_id"], unique=False)

    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guard_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("number_masked", sa.String(length=64), nullable=False),
        sa.Column("number_digest_sha256", sa.String(length=64), nullable=False),
        sa.Column("number_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('certificate', 'card')", name="ck_credentials_kind"),
        sa.ForeignKeyConstraint(
            ["guard_id"],
            ["guards.guard_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number_digest_sha256", "kind", name="uq_credentials_digest_kind"),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credentials_guard_id"), ["guard_id"], unique=False)

    op.create_table(
        "face_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guard_id", sa.String(length=64), nullable=False),
        sa.Column("encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["guard_id"],
            ["guards.guard_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_templates_guard_id"), ["guard_id"], unique=False)

    op.create_table(
        "posts",
        sa.Column("post_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.site_id"],
        ),
        sa.PrimaryKeyConstraint("post_id"),
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_posts_site_id"), ["site_id"], unique=False)

    op.create_table(
        "shifts",
        sa.Column("shift_id", sa.String(length=64), nullable=False),
        sa.Column("post_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("start", sa.String(length=5), nullable=False),
        sa.Column("end", sa.String(length=5), nullable=False),
        sa.Column("checkin_window_min", sa.Integer(), nullable=False),
        sa.Column("late_grace_min", sa.Integer(), nullable=False),
        sa.Column("early_leave_grace_min", sa.Integer(), nullable=False),
        sa.Column("patrol_interval_min", sa.Integer(), nullable=True),
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.site_id"],
        ),
        sa.PrimaryKeyConstraint("shift_id"),
    )
    with op.batch_alter_table("shifts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shifts_site_id"), ["site_id"], unique=False)

    op.create_table(
        "roster_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("shift_id", sa.String(length=64), nullable=False),
        sa.Column("guard_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["shift_id"],
            ["shifts.shift_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("date", "shift_id", "guard_id"),
    )
    with op.batch_alter_table("roster_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roster_entries_date"), ["date"], unique=False)
        batch_op.create_index(batch_op.f("ix_roster_entries_guard_id"), ["guard_id"], unique=False)

    op.create_table(
        "terminals",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat", sa.JSON(), nullable=True),
        sa.Column("post_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.post_id"],
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.site_id"],
        ),
        sa.PrimaryKeyConstraint("device_id"),
    )
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_terminals_post_id"), ["post_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_terminals_site_id"), ["site_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_terminals_site_id"))
        batch_op.drop_index(batch_op.f("ix_terminals_post_id"))

    op.drop_table("terminals")
    with op.batch_alter_table("roster_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roster_entries_guard_id"))
        batch_op.drop_index(batch_op.f("ix_roster_entries_date"))

    op.drop_table("roster_entries")
    with op.batch_alter_table("shifts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shifts_site_id"))

    op.drop_table("shifts")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posts_site_id"))

    op.drop_table("posts")
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_templates_guard_id"))

    op.drop_table("face_templates")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_guard_id"))

    op.drop_table("credentials")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignments_site_id"))
        batch_op.drop_index(batch_op.f("ix_assignments_guard_id"))
        batch_op.drop_index(batch_op.f("ix_assignments_company_id"))

    op.drop_table("assignments")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sites_company_id"))

    op.drop_table("sites")
    with op.batch_alter_table("guards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guards_company_id"))

    op.drop_table("guards")
    with op.batch_alter_table("company_cross_region_filings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_company_cross_region_filings_company_id"))

    op.drop_table("company_cross_region_filings")
    op.drop_table("users")
    with op.batch_alter_table("rejects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rejects_received_at"))
        batch_op.drop_index(batch_op.f("ix_rejects_device_id"))

    op.drop_table("rejects")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_findings_site_id"))
        batch_op.drop_index(batch_op.f("ix_findings_kind"))
        batch_op.drop_index(batch_op.f("ix_findings_guard_id"))
        batch_op.drop_index(batch_op.f("ix_findings_created_at"))

    op.drop_table("findings")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_site_captured")
        batch_op.drop_index("ix_events_guard_captured")
        batch_op.drop_index(batch_op.f("ix_events_device_id"))
        batch_op.drop_index("ix_events_captured")

    op.drop_table("events")
    with op.batch_alter_table("duty_records", schema=None) as batch_op:
        batch_op.drop_index("ix_duty_site_date")
        batch_op.drop_index("ix_duty_guard_date")

    op.drop_table("duty_records")
    op.drop_table("duty_dirty")
    with op.batch_alter_table("duty_corrections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duty_corrections_guard_id"))

    op.drop_table("duty_corrections")
    op.drop_table("companies")
