"""The Exports page: ask for a monthly attendance export and follow your jobs (progress polled by static JS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from sqlalchemy import or_, select
from werkzeug.exceptions import TooManyRequests

from server.exports.access import company_in_scope
from server.exports.request import ExportRequestError, parse_request
from server.exports.tables import ExportJob
from server.models import Company, Guard, Site
from server.web import api_exports, get_session
from server.web.api_exports import job_document
from server.web.auth import current_scope, require_login
from server.web.exports_access import submit_export
from server.web.i18n import gettext, locale
from server.web.pages import NAV_ITEMS

bp = Blueprint("exports", __name__)
bp.register_blueprint(api_exports.bp, url_prefix="/api/v1")
NAV_ITEMS.append(("exports.index", "Exports"))
PAGE_JOBS = 50
GUARD_CHOICES = 1000  # suggestions in the guard field; any guard in scope can still be typed


def _choices() -> dict:
    scope, db = current_scope(), get_session()
    sites = db.execute(select(Site.site_id, Site.name).where(scope.site_clause()).order_by(Site.site_id)).all()
    companies = []
    if scope.role != "supervisor":
        query = select(Company.company_id, Company.name).order_by(Company.company_id)
        if scope.role == "manager":
            query = query.where(Company.company_id == scope.company_id)
        elif scope.role == "police":
            guarding = select(Site.company_id).where(scope.site_clause())
            query = query.where(or_(Company.home_province == scope.jurisdiction, Company.company_id.in_(guarding)))
        companies = [c for c in db.execute(query).all() if company_in_scope(db, scope, c.company_id)]
    guards = db.execute(
        select(Guard.guard_id, Guard.name).where(scope.guard_clause()).order_by(Guard.guard_id).limit(GUARD_CHOICES)
    ).all()
    return {"sites": sites, "companies": companies, "guards": guards}


def _render(form: dict, error: str | None = None, status: int = 200, created: int | None = None):
    found = get_session().scalars(
        select(ExportJob).where(ExportJob.user_id == g.user.id).order_by(ExportJob.id.desc()).limit(PAGE_JOBS)
    )
    page = render_template(
        "exports.html",
        jobs=[job_document(job) for job in found],
        form=form,
        error=error,
        created=created,
        last_month=(datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m"),
        **_choices(),
    )
    return page, status


@bp.get("/exports")
@require_login
def index():
    created = request.args.get("created", type=int)
    return _render({"format": "xlsx", "locale": locale()}, created=created)


@bp.post("/exports")
@require_login
def create() -> Response | tuple[str, int]:
    form = {key: request.form.get(key, "").strip() for key in ("month", "format", "company", "site", "guard")}
    form["locale"] = request.form.get("locale") or locale()
    chosen = {key: value for key, value in form.items() if value}
    try:
        export = parse_request(chosen)
    except ExportRequestError as exc:
        return _render(form, gettext("The export was not queued: {reason}", reason=str(exc)), 400)
    try:
        job = submit_export(export)
    except TooManyRequests as exc:
        return _render(form, gettext("The export was not queued: {reason}", reason=exc.description), 429)
    return redirect(url_for("exports.index", created=job.id))
