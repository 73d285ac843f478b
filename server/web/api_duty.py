"""Duty API: duty logs by day, site and guard; supervisors' corrections; findings to review."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, g, request
from sqlalchemy import and_, or_, select

from server.duty.service import correct
from server.duty.tables import DutyRecordRow
from server.models import Finding, Guard
from server.registry import RegistryError
from server.web import get_session
from server.web.api import _limit
from server.web.auth import current_scope, require_site, require_user, require_write

bp = Blueprint("duty", __name__)
MAX_DAYS = 62


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(tzinfo=UTC).isoformat()


def _day(name: str, default: date | None = None) -> date:
    raw = request.args.get(name) if name in request.args else None
    if raw is None:
        if default is None:
            abort(400, f"{name} is required, as YYYY-MM-DD")
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(400, f"{name} must be a date like 2026-04-01, got {raw!r}")


def _record(r: DutyRecordRow) -> dict[str, Any]:
    return {
        "guard_id": r.guard_id,
        "site_id": r.site_id,
        "post_id": r.post_id,
        "shift_id": r.shift_id,
        "date": r.date.isoformat(),
        "status": r.status,
        "first_in": _time(r.first_in),
        "last_out": _time(r.last_out),
        "minutes_worked": r.minutes_worked,
        "overtime_minutes": r.overtime_minutes,
        "late_minutes": r.late_minutes,
        "early_leave_minutes": r.early_leave_minutes,
        "check_in_method": r.check_in_method,
        "check_in_distance": r.check_in_distance,
        "corrected": r.corrected,
        "event_ids": r.punch_ids,
    }


@bp.get("/duty")
@require_user
def duty_log() -> dict[str, Any]:
    first = _day("from", _day("date", datetime.now(UTC).date()))
    last = _day("to", first)
    if last < first or last - first > timedelta(days=MAX_DAYS):
        abort(400, f"from..to must be at most {MAX_DAYS} days, in order")
    query = select(DutyRecordRow).where(DutyRecordRow.date.between(first, last))
    if request.args.get("site"):
        require_site(request.args["site"])
    if not current_scope().everything:
        query = query.where(DutyRecordRow.site_id.in_(current_scope().site_ids_query()))
    for name, column in (("site", DutyRecordRow.site_id), ("guard", DutyRecordRow.guard_id)):
        if request.args.get(name):
            query = query.where(column == request.args[name])
    rows = get_session().scalars(
        query.order_by(DutyRecordRow.date, DutyRecordRow.site_id, DutyRecordRow.shift_id, DutyRecordRow.guard_id)
    )
    return {"from": first.isoformat(), "to": last.isoformat(), "records": [_record(r) for r in rows]}


def require_record_in_scope(session, guard_id: str, shift_id: str | None, day: date) -> None:
    """A correction touches a site's duty log: that site must be the user's."""
    sites = session.scalars(
        select(DutyRecordRow.site_id).where(
            DutyRecordRow.guard_id == guard_id, DutyRecordRow.shift_id == shift_id, DutyRecordRow.date == day
        )
    ).all()
    for site_id in sites:
        require_site(site_id)


@bp.post("/duty/corrections")
@require_user
def add_correction() -> tuple[dict[str, Any], int]:
    require_write()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "send a JSON object with guard_id, shift_id, date, field, value and reason")
    missing = [k for k in ("guard_id", "date", "field", "value", "reason") if not isinstance(body.get(k), str)]
    if missing:
        abort(400, f"missing or not text: {', '.join(missing)}")
    try:
        day = date.fromisoformat(body["date"])
        session = get_session()
        require_record_in_scope(session, body["guard_id"], body.get("shift_id"), day)
        c = correct(
            session,
            guard_id=body["guard_id"],
            shift_id=body.get("shift_id"),
            day=day,
            field=body["field"],
            value=body["value"],
            reason=body["reason"],
            by=g.user.name,
        )
        session.commit()
    except ValueError as exc:  # RegistryError included: a readable rule, not a server error
        abort(422 if isinstance(exc, RegistryError) else 400, str(exc))
    return {
        "id": c.id,
        "field": c.field,
        "old_value": c.old_value,
        "new_value": c.new_value,
        "corrected_by": c.corrected_by,
        "corrected_at": _time(c.corrected_at),
        "reason": c.reason,
    }, 201


@bp.get("/findings")
@require_user
def findings() -> dict[str, Any]:
    query = select(Finding)
    if not current_scope().everything:
        scope = current_scope()
        guards = select(Guard.guard_id).where(scope.guard_clause())
        sited = Finding.site_id.in_(scope.site_ids_query())
        query = query.where(or_(sited, and_(Finding.site_id.is_(None), Finding.guard_id.in_(guards))))
    if request.args.get("open", "1") != "0":
        query = query.where(Finding.resolved_at.is_(None))
    for name, column in (("kind", Finding.kind), ("site", Finding.site_id), ("guard", Finding.guard_id)):
        if request.args.get(name):
            query = query.where(column == request.args[name])
    rows = get_session().scalars(query.order_by(Finding.id.desc()).limit(_limit()))
    return {
        "findings": [
            {
                "id": f.id,
                "kind": f.kind,
                "severity": f.severity,
                "site_id": f.site_id,
                "device_id": f.device_id,
                "guard_id": f.guard_id,
                "event_id": f.event_id,
                "detail": f.detail,
                "created_at": _time(f.created_at),
                "resolved_at": _time(f.resolved_at),
                "resolved_by": f.resolved_by,
            }
            for f in rows
        ]
    }
