"""Duty tables: shifts, roster, computed duty records, supervisors' corrections and the recompute queue."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models import Base, utcnow


class ShiftRow(Base):
    __tablename__ = "shifts"
    shift_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    post_id: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    start: Mapped[str] = mapped_column(String(5))  # local wall-clock HH:MM in ``tz``
    end: Mapped[str] = mapped_column(String(5))
    checkin_window_min: Mapped[int] = mapped_column(Integer)
    late_grace_min: Mapped[int] = mapped_column(Integer)
    early_leave_grace_min: Mapped[int] = mapped_column(Integer)
    patrol_interval_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tz: Mapped[str] = mapped_column(String(64))


class RosterRow(Base):
    __tablename__ = "roster_entries"
    __table_args__ = (UniqueConstraint("date", "shift_id", "guard_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[date] = mapped_column(Date, index=True)
    shift_id: Mapped[str] = mapped_column(ForeignKey("shifts.shift_id"))
    guard_id: Mapped[str] = mapped_column(String(64), index=True)


class DutyRecordRow(Base):
    """The engine's record for one guard and shift (or unscheduled visit), with corrections applied."""

    __tablename__ = "duty_records"
    __table_args__ = (
        Index("ix_duty_site_date", "site_id", "date"),
        Index("ix_duty_guard_date", "guard_id", "date"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guard_id: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[str] = mapped_column(String(64))
    post_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    shift_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(24))
    first_in: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_out: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    minutes_worked: Mapped[int] = mapped_column(Integer)
    overtime_minutes: Mapped[int] = mapped_column(Integer)
    late_minutes: Mapped[int] = mapped_column(Integer)
    early_leave_minutes: Mapped[int] = mapped_column(Integer)
    check_in_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    check_in_distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    punch_ids: Mapped[list] = mapped_column(JSON)
    corrected: Mapped[bool] = mapped_column(default=False)
    computed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DutyCorrection(Base):
    """A supervisor's change to a duty record: who, when, why and the old value; never deleted."""

    __tablename__ = "duty_corrections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guard_id: Mapped[str] = mapped_column(String(64), index=True)
    site_id: Mapped[str] = mapped_column(String(64))
    shift_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    date: Mapped[date] = mapped_column(Date)
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(String(64), nullable=True)
    new_value: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    corrected_by: Mapped[str] = mapped_column(String(100))
    corrected_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DutyDirty(Base):
    """Site days whose duty log must be recomputed (late events from a terminal's backlog, corrections)."""

    __tablename__ = "duty_dirty"
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
