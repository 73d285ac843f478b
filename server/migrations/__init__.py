"""Alembic migrations of the GuardPost schema (SQLite and PostgreSQL)."""
