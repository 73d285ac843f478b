"""What the supervisor pages share: scoped lookups, form values, local times and the labels of codes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import request
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from server.models import Finding, Guard, Site
from server.scope import Scope
from server.web.i18n import gettext


class BadInput(ValueError):
    """A filter or form value that cannot be used; the message is shown to the user."""


def scoped_sites(db: Session, scope: Scope) -> list[Site]:
    return list(db.scalars(select(Site).where(scope.site_clause()).order_by(Site.site_id)))


def finding_clause(scope: Scope):
    """Findings at a site in scope, or, without a site, about a guard in scope."""
    if scope.everything:
        return Finding.id.is_not(None)
    guards = select(Guard.guard_id).where(scope.guard_clause())
    return or_(
        Finding.site_id.in_(scope.site_ids_query()), and_(Finding.site_id.is_(None), Finding.guard_id.in_(guards))
    )


def arg_day(name: str, default: date) -> date:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadInput(gettext("{name} must be a date like 2026-04-01", name=name)) from None


def day_range(default_days: int, max_days: int, today: date | None = None) -> tuple[date, date]:
    """``from`` and ``to`` (or a single ``date``) from the query string, at most ``max_days`` long."""
    today = today or date.today()
    single = arg_day("date", today) if request.args.get("date") else None
    last = arg_day("to", single or today)
    first = arg_day("from", single or last - timedelta(days=default_days - 1))
    if last < first:
        raise BadInput(gettext("the first day comes after the last"))
    if (last - first).days >= max_days:
        raise BadInput(gettext("choose at most {days} days", days=max_days))
    return first, last


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local(moment: datetime | None, tz: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored naive-UTC time as the site's wall-clock time."""
    if moment is None:
        return "—"
    return moment.replace(tzinfo=UTC).astimezone(zone(tz)).strftime(fmt)


def local_iso(moment: datetime | None, tz: str | None) -> str:
    """RFC 3339 with the site's offset: what a correction of a time expects."""
    if moment is None:
        return ""
    return moment.replace(tzinfo=UTC).astimezone(zone(tz)).isoformat(timespec="minutes")


def kind_label(kind: str) -> str:
    labels = {
        "borderline_match": gettext("Borderline match"),
        "unknown_face": gettext("Unknown face"),
        "certificate_expired": gettext("Expired guard certificate"),
        "certificate_missing": gettext("No guard certificate"),
        "not_assigned": gettext("Not posted at this site"),
        "missing_events": gettext("Missing events"),
        "terminal_offline": gettext("Terminal offline"),
        "clock_unsynced": gettext("Terminal clock not synced"),
        "duplicate_identity": gettext("Same face as another guard"),
        "missed_patrol": gettext("Missed patrol"),
        "handover_gap": gettext("Post unmanned at handover"),
    }
    return labels.get(kind) or status_label(kind)


def status_label(status: str) -> str:
    labels = {
        "present": gettext("present"),
        "late": gettext("late"),
        "early_leave": gettext("early leave"),
        "late_and_early_leave": gettext("late and early leave"),
        "absent": gettext("absent"),
        "missing_check_in": gettext("missing check-in"),
        "missing_check_out": gettext("missing check-out"),
        "unscheduled": gettext("unscheduled"),
        "in_progress": gettext("in progress"),
    }
    return labels.get(status, status)


def certificate_label(status: str) -> str:
    labels = {"valid": gettext("valid"), "expired": gettext("expired"), "missing": gettext("missing")}
    return labels.get(status, status)


def severity_label(severity: str) -> str:
    labels = {
        "violation": gettext("violation"),
        "warning": gettext("warning"),
        "review": gettext("to review"),
        "info": gettext("info"),
    }
    return labels.get(severity, severity)


def template_helpers() -> dict:
    return {
        "kind_label": kind_label,
        "status_label": status_label,
        "certificate_label": certificate_label,
        "severity_label": severity_label,
        "local": local,
        "local_iso": local_iso,
    }
