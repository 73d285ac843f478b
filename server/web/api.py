"""JSON API (/api/v1): health, live duty board, event and reject history, terminal gallery sync, and the registry."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.exc import SQLAlchemyError

from protocol.events import EventType, format_time
from server.config import ConfigError
from server.models import Event, Guard, Reject, Site, Terminal, utcnow
from server.registry import site_gallery
from server.web import api_enroll, api_registry, get_session, state
from server.web.auth import current_scope, require_device, require_site, require_user
from server.web.shared_cache import MicroCache

bp = Blueprint("api", __name__)
# Imports and registry reads (companies, sites, guards) live in their own module, under the same prefix.
bp.register_blueprint(api_registry.bp)
bp.register_blueprint(api_enroll.bp)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DUTY_WINDOW = timedelta(hours=24)
SINCE_LOOKBACK = 2 * DUTY_WINDOW
ON_DUTY_TYPES = ("check_in", "patrol")
EVENT_TYPES = get_args(EventType)


def _time(moment: datetime | None) -> str | None:
    """Stored naive UTC as RFC 3339 with +00:00."""
    return format_time(moment.replace(tzinfo=UTC)) if moment is not None else None


def _limit() -> int:
    raw = request.args.get("limit", "")
    if not raw:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        abort(400, f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}")
    return limit


def _moment(name: str) -> datetime | None:
    raw = request.args.get(name, "")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        abort(
            400,
            f"{name} must be RFC 3339 with an offset, e.g. 2024-05-01T08:00:00Z "
            f"(in a URL write '+' as %2B), got {raw!r}",
        )
    return moment.astimezone(UTC).replace(tzinfo=None)


def _encode_cursor(captured_at: datetime, row_id: int) -> str:
    raw = f"{captured_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        when, _, row_id = raw.partition("|")
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is not None:
            raise ValueError("cursor times are naive UTC")
        return moment, int(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        abort(400, "cursor is not valid; pass the next_cursor of a previous answer unchanged")


@bp.get("/health")
def health() -> tuple[dict[str, str], int]:
    try:
        get_session().execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: database unavailable: %s", exc)
        return {"status": "degraded", "database": type(exc).__name__}, 503
    return {"status": "ok", "database": "ok"}, 200


def _on_duty(now: datetime, site_ids) -> dict[str, list[dict[str, Any]]]:
    """Guards whose latest non-denied event in the duty window, per site, starts or continues a duty."""
    session = get_session()
    rank = func.row_number().over(
        partition_by=(Event.site_id, Event.guard_id), order_by=(Event.captured_at.desc(), Event.id.desc())
    )
    latest = (
        select(Event.site_id, Event.guard_id, Event.type, Event.method, Event.device_id, rank.label("rank"))
        .where(Event.captured_at >= now - DUTY_WINDOW, Event.type != "denied", Event.guard_id.is_not(None))
        .where(Event.site_id.in_(site_ids))
        .subquery()
    )
    rows = session.execute(
        select(latest.c.site_id, latest.c.guard_id, latest.c.method, latest.c.device_id, Guard.name)
        .outerjoin(Guard, Guard.guard_id == latest.c.guard_id)
        .where(latest.c.rank == 1, latest.c.type.in_(ON_DUTY_TYPES))
        .order_by(latest.c.site_id, Guard.name, latest.c.guard_id)
    ).all()
    if not rows:
        return {}
    # The duty began at the first check-in after the guard's last check-out there. A long shift can have
    # started before the window, but no duty outlasts two of them: bounding the look-up keeps it off the
    # whole history (106 ms -> 10 ms for 2,000 guards with a month of events, benchmarks/live_board.py).
    guard_ids = sorted({r.guard_id for r in rows})
    horizon = now - SINCE_LOOKBACK
    last_out = (
        select(Event.site_id, Event.guard_id, func.max(Event.captured_at).label("at"))
        .where(Event.type == "check_out", Event.guard_id.in_(guard_ids), Event.captured_at >= horizon)
        .group_by(Event.site_id, Event.guard_id)
        .subquery()
    )
    started = {
        (site_id, guard_id): when
        for site_id, guard_id, when in session.execute(
            select(Event.site_id, Event.guard_id, func.min(Event.captured_at))
            .outerjoin(last_out, (last_out.c.site_id == Event.site_id) & (last_out.c.guard_id == Event.guard_id))
            .where(Event.type == "check_in", Event.guard_id.in_(guard_ids), Event.captured_at >= horizon)
            .where(last_out.c.at.is_(None) | (Event.captured_at > last_out.c.at))
            .group_by(Event.site_id, Event.guard_id)
        )
    }
    by_site: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_site.setdefault(row.site_id, []).append(
            {
                "guard_id": row.guard_id,
                "name": row.name,
                "since": _time(started.get((row.site_id, row.guard_id))),
                "method": row.method,
                "device_id": row.device_id,
            }
        )
    return by_site


def _terminal_json(terminal: Terminal) -> dict[str, Any]:
    heartbeat = terminal.heartbeat if isinstance(terminal.heartbeat, dict) else {}
    return {
        "device_id": terminal.device_id,
        "online": terminal.online,
        "last_seen_at": _time(terminal.last_seen_at),
        "outbox_depth": heartbeat.get("outbox_depth"),
        "clock_synced": heartbeat.get("clock_synced"),
        "alarms": heartbeat.get("alarms") or [],
    }


BOARD_CACHE_KEY = "guardpost.board_cache"


def _board_cache() -> MicroCache:
    # 50 supervisors watching the board cost one computation per scope a second, not 50
    # (benchmarks/live_board.py); GUARDPOST_BOARD_CACHE_S = 0 turns it off.
    extensions = current_app.extensions
    if BOARD_CACHE_KEY not in extensions:
        extensions[BOARD_CACHE_KEY] = MicroCache(ttl_s=current_app.config.get("GUARDPOST_BOARD_CACHE_S", 1.0))
    return extensions[BOARD_CACHE_KEY]


@bp.get("/live")
@require_user
def live() -> Response:
    scope = current_scope()
    key = (scope.role, scope.company_id, scope.jurisdiction, tuple(sorted(scope.site_ids)))
    body = _board_cache().get(key, lambda: json.dumps(_board(), ensure_ascii=False).encode("utf-8"))
    return Response(body, mimetype="application/json")


def _board() -> dict[str, Any]:
    """Who is on duty where, and each site's terminals, for the request's scope."""
    session = get_session()
    now = utcnow()
    visible = current_scope().site_ids_query()
    on_duty = _on_duty(now, visible)
    terminals: dict[str, list[dict[str, Any]]] = {}
    in_scope = select(Terminal).where(Terminal.site_id.in_(visible))
    for terminal in session.scalars(in_scope.order_by(Terminal.site_id, Terminal.device_id)):
        terminals.setdefault(terminal.site_id, []).append(_terminal_json(terminal))
    sites = session.scalars(select(Site).where(current_scope().site_clause()).order_by(Site.site_id)).all()
    return {
        "generated_at": _time(now),
        "sites": [
            {
                "site_id": site.site_id,
                "name": site.name,
                "on_duty": on_duty.get(site.site_id, []),
                "terminals": terminals.get(site.site_id, []),
            }
            for site in sites
        ],
    }


def _event_json(event: Event, guard_name: str | None) -> dict[str, Any]:
    payload = event.payload if isinstance(event.payload, dict) else {}
    match = None
    # Liveness is set for every face match; distance is null when the terminal's gallery was empty.
    if event.liveness is not None or event.distance is not None:
        raw_match = payload.get("match") if isinstance(payload.get("match"), dict) else {}
        match = {
            "distance": event.distance,
            "margin": event.margin,
            "frames": raw_match.get("frames"),
            "liveness": event.liveness,
        }
    return {
        "event_id": event.event_id,
        "device_id": event.device_id,
        "site_id": event.site_id,
        "seq": event.seq,
        "type": event.type,
        "method": event.method,
        "guard_id": event.guard_id,
        "guard_name": guard_name,
        "captured_at": _time(event.captured_at),
        "received_at": _time(event.received_at),
        "clock_synced": event.clock_synced,
        "match": match,
        "evidence_sha256": payload.get("evidence_sha256"),
        "candidate_guard_id": payload.get("candidate_guard_id"),
        "card": payload.get("card"),
    }


@bp.get("/events")
@require_user
def events() -> dict[str, Any]:
    """Newest first; ``since`` is inclusive, ``until`` exclusive; page on with ``cursor``."""
    limit = _limit()
    query = select(Event, Guard.name).outerjoin(Guard, Guard.guard_id == Event.guard_id)
    if site := request.args.get("site"):
        require_site(site)
    if not current_scope().everything:
        query = query.where(Event.site_id.in_(current_scope().site_ids_query()))
    for param, column in (("site", Event.site_id), ("device", Event.device_id), ("guard", Event.guard_id)):
        if value := request.args.get(param):
            query = query.where(column == value)
    if event_type := request.args.get("type"):
        if event_type not in EVENT_TYPES:
            abort(400, f"type must be one of {', '.join(EVENT_TYPES)}, got {event_type!r}")
        query = query.where(Event.type == event_type)
    if (since := _moment("since")) is not None:
        query = query.where(Event.captured_at >= since)
    if (until := _moment("until")) is not None:
        query = query.where(Event.captured_at < until)
    if cursor := request.args.get("cursor"):
        after_at, after_id = _decode_cursor(cursor)
        query = query.where(or_(Event.captured_at < after_at, and_(Event.captured_at == after_at, Event.id < after_id)))
    # One extra row tells whether another page exists.
    rows = get_session().execute(query.order_by(Event.captured_at.desc(), Event.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1].Event
        next_cursor = _encode_cursor(last.captured_at, last.id)
    return {"events": [_event_json(row.Event, row.name) for row in page], "next_cursor": next_cursor}


@bp.get("/rejects")
@require_user
def rejects() -> dict[str, Any]:
    limit = _limit()
    query = select(Reject)
    if not current_scope().everything:
        # Rejects from unknown devices belong to no site: only admins see them.
        scoped_devices = select(Terminal.device_id).where(Terminal.site_id.in_(current_scope().site_ids_query()))
        query = query.where(Reject.device_id.in_(scoped_devices))
    if device := request.args.get("device"):
        query = query.where(Reject.device_id == device)
    query = query.order_by(Reject.received_at.desc(), Reject.id.desc()).limit(limit)
    return {
        "rejects": [
            {
                "id": r.id,
                "received_at": _time(r.received_at),
                "topic": r.topic,
                "device_id": r.device_id,
                "reason": r.reason,
                "detail": r.detail,
                "payload_size": r.payload_size,
                "payload_excerpt": r.payload_excerpt,
            }
            for r in get_session().scalars(query)
        ]
    }


@bp.get("/terminal/gallery")
@require_device
def gallery() -> Response:
    """The site's gallery; the version is the ETag, so an unchanged gallery answers 304."""
    cipher = state().cipher
    if cipher is None:
        abort(503, "gallery sync is unavailable: the server has no template key (set GUARDPOST_KEY_FILE)")
    try:
        document = site_gallery(get_session(), cipher, g.terminal.site_id)
    except ConfigError as exc:
        current_app.logger.error("gallery for %s: %s", g.terminal.site_id, exc)
        abort(503, f"gallery sync is unavailable: {exc}")
    response = jsonify(document)
    response.set_etag(document["version"])
    return response.make_conditional(request)
