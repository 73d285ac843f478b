"""Charts page: attendance rate per day, lateness by site and check-ins per hour, drawn on the server as SVG."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import Blueprint, render_template, request
from sqlalchemy import select

from server.chart_series import attendance_per_day, checkins_per_hour, lateness_by_site
from server.duty.tables import DutyRecordRow
from server.models import Event, ReviewDecision, Site
from server.web import get_session
from server.web.auth import current_scope, require_login, require_site
from server.web.charts_svg import Bar, bar_chart
from server.web.i18n import gettext
from server.web.page_helpers import BadInput, day_range, scoped_sites, template_helpers, zone

bp = Blueprint("charts", __name__)
bp.context_processor(template_helpers)

DEFAULT_DAYS = 14
MAX_DAYS = 62


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.0f} %"


def _attendance_chart(days) -> tuple:
    bars = [
        Bar(
            d.day.strftime("%m-%d"),
            None if d.rate is None else d.rate * 100,
            gettext(
                "{day}: {rate} ({attended} of {rostered} duties)",
                day=d.day.isoformat(),
                rate=_percent(d.rate),
                attended=d.attended,
                rostered=d.rostered,
            ),
        )
        for d in days
    ]
    title = gettext("Attendance rate per day")
    description = gettext("Share of rostered duties the guard attended, per day; grey days had no rostered duty.")
    return bar_chart("attendance", title, description, bars, max_value=100, axis_format="{} %"), days


def _lateness_chart(sites) -> tuple:
    bars = [
        Bar(
            s.site_id,
            None if s.share is None else s.share * 100,
            gettext(
                "{site}: {share} late ({late} of {attended}), {minutes} min late on average",
                site=s.site_id,
                share=_percent(s.share),
                late=s.late,
                attended=s.attended,
                minutes=f"{s.average_minutes:.0f}" if s.average_minutes is not None else "0",
            ),
        )
        for s in sites
    ]
    title = gettext("Lateness by site")
    description = gettext("Share of attended duties that started late, per site.")
    return bar_chart("lateness", title, description, bars, max_value=100, axis_format="{} %"), sites


def _hours_chart(counts: list[int]) -> tuple:
    bars = [
        Bar(f"{hour:02d}", count, gettext("{hour}:00–{hour}:59: {count} check-ins", hour=f"{hour:02d}", count=count))
        for hour, count in enumerate(counts)
    ]
    title = gettext("Check-ins per hour")
    description = gettext("Check-ins in each hour of the day, in each site's local time, over the chosen days.")
    return bar_chart("hours", title, description, bars, counts=True), counts


def _check_in_times(db, site_ids, first, last) -> list[datetime]:
    """Local times of check-ins (confirmed borderline matches included) at these sites on these days."""
    zones = dict(db.execute(select(Site.site_id, Site.timezone).where(Site.site_id.in_(site_ids))).all())
    # A day longer on each side: local days differ from UTC ones; the local date decides below.
    start = datetime.combine(first - timedelta(days=1), time())
    end = datetime.combine(last + timedelta(days=2), time())
    window = (Event.site_id.in_(site_ids), Event.captured_at >= start, Event.captured_at < end)
    rows = db.execute(select(Event.site_id, Event.captured_at).where(Event.type == "check_in", *window)).all()
    rows += db.execute(
        select(Event.site_id, Event.captured_at)
        .join(ReviewDecision, ReviewDecision.event_id == Event.event_id)
        .where(ReviewDecision.decision == "confirmed", *window)
    ).all()
    local = [at.replace(tzinfo=UTC).astimezone(zone(zones.get(site))) for site, at in rows]
    return [moment for moment in local if first <= moment.date() <= last]


@bp.get("/charts")
@require_login
def index() -> tuple[str, int]:
    db = get_session()
    scope = current_scope()
    error, status = None, 200
    try:
        first, last = day_range(DEFAULT_DAYS, MAX_DAYS)
    except BadInput as exc:
        last = datetime.now().date()
        first, error, status = last - timedelta(days=DEFAULT_DAYS - 1), str(exc), 400
    site = request.args.get("site", "").strip()
    sites = scoped_sites(db, scope)
    if site:
        require_site(site)
    site_ids = [site] if site else [s.site_id for s in sites]
    records = db.execute(
        select(DutyRecordRow.date, DutyRecordRow.site_id, DutyRecordRow.status, DutyRecordRow.late_minutes).where(
            DutyRecordRow.site_id.in_(site_ids), DutyRecordRow.date.between(first, last)
        )
    ).all()
    charts = [
        _attendance_chart(attendance_per_day(((r.date, r.status) for r in records), first, last)),
        _lateness_chart(lateness_by_site((r.site_id, r.status, r.late_minutes) for r in records)),
        _hours_chart(checkins_per_hour(_check_in_times(db, site_ids, first, last))),
    ]
    html = render_template(
        "charts.html", charts=charts, first=first, last=last, site=site, sites=sites, error=error, percent=_percent
    )
    return html, status
