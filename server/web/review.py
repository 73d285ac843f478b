"""Alerts and review queue: open findings in scope with filters; supervisors confirm or reject borderline matches."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from sqlalchemy import select

from server.models import Event, Finding, utcnow
from server.review import DECISIONS, REVIEW_KIND, ReviewError, candidate_of, decide, decisions_for
from server.web import get_session
from server.web.auth import current_scope, deny, require_login, require_site, require_write
from server.web.i18n import gettext
from server.web.page_helpers import finding_clause, kind_label, scoped_sites, template_helpers
from server.web.pages import safe_next

bp = Blueprint("review", __name__)
bp.context_processor(template_helpers)

LIMIT = 200
# Codes as stored, in the order the filter lists them.
KINDS = (
    "borderline_match",
    "unknown_face",
    "certificate_expired",
    "certificate_missing",
    "not_assigned",
    "missing_events",
    "terminal_offline",
    "clock_unsynced",
    "duplicate_identity",
    "missed_patrol",
    "absent",
    "late",
    "early_leave",
    "missing_check_in",
    "missing_check_out",
    "unscheduled",
    "handover_gap",
)
SEVERITIES = ("violation", "review", "warning", "info")


def _filters() -> dict[str, str]:
    wanted = {name: request.args.get(name, "").strip() for name in ("kind", "site", "severity", "state")}
    wanted["state"] = wanted["state"] if wanted["state"] in ("open", "resolved", "all") else "open"
    return wanted


def _page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    db = get_session()
    scope = current_scope()
    wanted = _filters()
    if wanted["site"]:
        require_site(wanted["site"])
    query = select(Finding).where(finding_clause(scope))
    if wanted["state"] == "open":
        query = query.where(Finding.resolved_at.is_(None))
    elif wanted["state"] == "resolved":
        query = query.where(Finding.resolved_at.is_not(None))
    for name, column in (("kind", Finding.kind), ("site", Finding.site_id), ("severity", Finding.severity)):
        if wanted[name]:
            query = query.where(column == wanted[name])
    findings = db.scalars(query.order_by(Finding.created_at.desc(), Finding.id.desc()).limit(LIMIT)).all()
    event_ids = [f.event_id for f in findings if f.kind == REVIEW_KIND and f.event_id]
    events = {e.event_id: e for e in db.scalars(select(Event).where(Event.event_id.in_(event_ids)))}
    decided = decisions_for(db, [f.id for f in findings if f.kind == REVIEW_KIND])
    just_decided = decided_now = None
    if request.args.get("decided", "").isdigit():
        shown = select(Finding).where(Finding.id == int(request.args["decided"]), finding_clause(scope))
        just_decided = db.scalar(shown)
        if just_decided is not None:
            decided_now = decisions_for(db, [just_decided.id]).get(just_decided.id)
    html = render_template(
        "alerts.html",
        findings=findings,
        events=events,
        decided=decided,
        decided_now=decided_now,
        candidate_of=candidate_of,
        wanted=wanted,
        kinds=[(k, kind_label(k)) for k in KINDS],
        severities=SEVERITIES,
        sites=scoped_sites(db, scope),
        can_decide=scope.can_write,
        limit=LIMIT,
        error=error,
    )
    return html, status


@bp.get("/alerts")
@require_login
def index() -> tuple[str, int]:
    return _page()


@bp.post("/alerts/<int:finding_id>/decision")
@require_login
def decision(finding_id: int) -> Response | tuple[str, int]:
    require_write()
    db = get_session()
    finding = db.get(Finding, finding_id)
    if finding is None:
        abort(404)
    if finding.site_id is None:
        deny(f"finding {finding_id} belongs to no site")
    require_site(finding.site_id)
    choice = request.form.get("decision", "")
    if choice not in DECISIONS:
        return _page(gettext("Choose confirm or reject."), 400)
    try:
        decide(db, finding, choice, request.form.get("reason", ""), g.user.name, utcnow())
        db.commit()
    except ReviewError as exc:
        db.rollback()
        return _page(gettext("The decision was not recorded: {error}", error=str(exc)), 422)
    back = safe_next(request.form.get("next") or url_for("review.index"))
    separator = "&" if "?" in back else "?"
    return redirect(f"{back}{separator}decided={finding_id}", code=303)
