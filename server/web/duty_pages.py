"""Duty log pages: records by day, site and guard with filters; corrections with a reason and their history."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from sqlalchemy import select

from server.duty.records import STATUSES
from server.duty.service import CORRECTABLE, correct
from server.duty.tables import DutyCorrection, DutyRecordRow
from server.models import Site
from server.registry import RegistryError
from server.web import get_session
from server.web.api_duty import require_record_in_scope
from server.web.auth import current_scope, require_login, require_site, require_write
from server.web.i18n import gettext
from server.web.page_helpers import BadInput, day_range, scoped_sites, template_helpers
from server.web.pages import safe_next

bp = Blueprint("duty_pages", __name__)
bp.context_processor(template_helpers)

MAX_DAYS = 31
MAX_ROWS = 2000


def _filters() -> dict[str, str]:
    return {name: request.args.get(name, "").strip()[:100] for name in ("site", "guard", "status", "corrected")}


def _page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    db = get_session()
    scope = current_scope()
    wanted = _filters()
    try:
        first, last = day_range(1, MAX_DAYS)
    except BadInput as exc:
        first = last = date.today()
        error, status = str(exc), 400
    if wanted["site"]:
        require_site(wanted["site"])
    query = select(DutyRecordRow).where(DutyRecordRow.date.between(first, last))
    if not scope.everything:
        query = query.where(DutyRecordRow.site_id.in_(scope.site_ids_query()))
    for name, column in (("site", DutyRecordRow.site_id), ("guard", DutyRecordRow.guard_id)):
        if wanted[name]:
            query = query.where(column == wanted[name])
    if wanted["status"] in STATUSES:
        query = query.where(DutyRecordRow.status == wanted["status"])
    if wanted["corrected"]:
        query = query.where(DutyRecordRow.corrected.is_(True))
    order = (DutyRecordRow.date, DutyRecordRow.site_id, DutyRecordRow.shift_id, DutyRecordRow.guard_id)
    records = db.scalars(query.order_by(*order).limit(MAX_ROWS + 1)).all()
    more = len(records) > MAX_ROWS
    records = records[:MAX_ROWS]
    history: dict[tuple, list[DutyCorrection]] = {}
    sites = {r.site_id for r in records if r.corrected}
    if sites:
        corrections = db.scalars(
            select(DutyCorrection)
            .where(DutyCorrection.site_id.in_(sorted(sites)), DutyCorrection.date.between(first, last))
            .order_by(DutyCorrection.id)
        )
        for c in corrections:
            history.setdefault((c.guard_id, c.shift_id, c.date), []).append(c)
    html = render_template(
        "duty.html",
        records=records,
        history=history,
        more=more,
        max_rows=MAX_ROWS,
        first=first,
        last=last,
        wanted=wanted,
        sites=scoped_sites(db, scope),
        zones=dict(db.execute(select(Site.site_id, Site.timezone)).all()),
        statuses=STATUSES,
        fields=sorted(CORRECTABLE),
        can_correct=scope.can_write,
        corrected_now=_just_corrected(db),
        error=error,
        back=url_for("duty_pages.index", **{k: v for k, v in request.args.items() if k != "corrected_id"}),
    )
    return html, status


def _just_corrected(db) -> DutyCorrection | None:
    raw = request.args.get("corrected_id", "")
    if not raw.isdigit():
        return None
    correction = db.get(DutyCorrection, int(raw))
    # Only a correction the viewer may see anyway.
    if correction is None or not current_scope().allows_site(db, correction.site_id):
        return None
    return correction


@bp.get("/duty")
@require_login
def index() -> tuple[str, int]:
    return _page()


@bp.post("/duty/corrections")
@require_login
def add_correction() -> Response | tuple[str, int]:
    require_write()
    db = get_session()
    form = request.form
    try:
        day = date.fromisoformat(form.get("date", ""))
    except ValueError:
        return _page(gettext("The correction was not saved: {error}", error="date must look like 2026-04-01"), 400)
    shift_id = form.get("shift_id") or None
    require_record_in_scope(db, form.get("guard_id", ""), shift_id, day)
    try:
        saved = correct(
            db,
            guard_id=form.get("guard_id", ""),
            shift_id=shift_id,
            day=day,
            field=form.get("field", ""),
            value=form.get("value", "").strip(),
            reason=form.get("reason", ""),
            by=g.user.name,
        )
        db.commit()
    except RegistryError as exc:
        db.rollback()
        return _page(gettext("The correction was not saved: {error}", error=str(exc)), 422)
    back = safe_next(form.get("next") or url_for("duty_pages.index", date=day.isoformat()))
    separator = "&" if "?" in back else "?"
    return redirect(f"{back}{separator}corrected_id={saved.id}", code=303)
