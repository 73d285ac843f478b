"""Guard pages: a searchable list and one guard's certificate, postings over time, check-ins and enrolment."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, render_template, request
from sqlalchemy import func, or_, select

from server.duty.tables import DutyRecordRow
from server.guard_records import certificate_statuses, guard_summary, trajectory
from server.models import Credential, Event, FaceTemplate, Guard, ReviewDecision, Site
from server.web import get_session
from server.web.auth import current_scope, require_guard, require_login
from server.web.page_helpers import template_helpers

bp = Blueprint("guards_pages", __name__)
bp.context_processor(template_helpers)

LIST_LIMIT = 200
RECENT_EVENTS = 30
DUTY_DAYS = 14


def _like(text: str) -> str:
    # The search is literal: % and _ typed by the user match themselves.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


@bp.get("/guards")
@require_login
def index() -> str:
    db = get_session()
    q = request.args.get("q", "").strip()[:100]
    query = select(Guard).where(current_scope().guard_clause())
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                func.lower(Guard.guard_id).like(pattern, escape="\\"), func.lower(Guard.name).like(pattern, escape="\\")
            )
        )
    guards = db.scalars(query.order_by(Guard.name, Guard.guard_id).limit(LIST_LIMIT + 1)).all()
    more = len(guards) > LIST_LIMIT
    guards = guards[:LIST_LIMIT]
    ids = [g.guard_id for g in guards]
    templates = dict(
        db.execute(
            select(FaceTemplate.guard_id, func.count())
            .where(FaceTemplate.guard_id.in_(ids))
            .group_by(FaceTemplate.guard_id)
        ).all()
    )
    return render_template(
        "guards.html",
        guards=guards,
        q=q,
        more=more,
        limit=LIST_LIMIT,
        certificates=certificate_statuses(db, ids) if ids else {},
        templates=templates,
    )


@bp.get("/guards/<guard_id>")
@require_login
def show(guard_id: str) -> str:
    db = get_session()
    if not current_scope().everything:
        require_guard(guard_id)  # unknown and out-of-scope look alike to the viewer
    guard = db.get(Guard, guard_id)
    if guard is None:
        abort(404)
    scope = current_scope()
    summary = guard_summary(db, guard_id)
    visible = scope.site_ids_query()
    zones = dict(db.execute(select(Site.site_id, Site.timezone)).all())
    # Check-ins and duty only where the viewer has the site; the trajectory is the guard's whole career.
    event_query = select(Event).where(Event.guard_id == guard_id)
    reviewed_query = (
        select(Event, ReviewDecision)
        .join(ReviewDecision, ReviewDecision.event_id == Event.event_id)
        .where(ReviewDecision.guard_id == guard_id)
    )
    duty_query = select(DutyRecordRow).where(
        DutyRecordRow.guard_id == guard_id, DutyRecordRow.date >= date.today() - timedelta(days=DUTY_DAYS)
    )
    if not scope.everything:
        event_query = event_query.where(Event.site_id.in_(visible))
        reviewed_query = reviewed_query.where(Event.site_id.in_(visible))
        duty_query = duty_query.where(DutyRecordRow.site_id.in_(visible))
    events = db.scalars(event_query.order_by(Event.captured_at.desc(), Event.id.desc()).limit(RECENT_EVENTS)).all()
    reviewed = db.execute(reviewed_query.order_by(Event.captured_at.desc()).limit(RECENT_EVENTS)).all()
    duty = db.scalars(duty_query.order_by(DutyRecordRow.date.desc(), DutyRecordRow.shift_id)).all()
    credentials = db.scalars(
        select(Credential).where(Credential.guard_id == guard_id).order_by(Credential.kind, Credential.valid_until)
    ).all()
    templates = db.execute(
        select(func.count(), func.max(FaceTemplate.created_at)).where(FaceTemplate.guard_id == guard_id)
    ).one()
    return render_template(
        "guard.html",
        guard=guard,
        summary=summary,
        trajectory=trajectory(db, guard_id),
        credentials=credentials,
        template_count=templates[0],
        enrolled_at=templates[1],
        events=events,
        reviewed=reviewed,
        duty=duty,
        duty_days=DUTY_DAYS,
        zones=zones,
        today=date.today(),
    )
