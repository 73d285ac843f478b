"""JSON API (/api/v1): health, live duty board, event and reject history, terminal gallery sync, and the registry."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any, get_args

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from sqlalchemy import and_, or_, select, text
from sqlalchemy.exc import SQLAlchemyError

from protocol.events import EventType, format_time
from server.config import ConfigError
from server.models import Event, Guard, Reject, Terminal, utcnow
from server.registry import site_gallery
from server.web import api_enroll, api_registry, get_session, state
from server.web.auth import current_scope, require_device, require_site, require_user
from server.web.shared_cache import app_cache

bp = Blueprint("api", __name__)
# Imports and registry reads (companies, sites, guards) live in their own module, under the same prefix.
bp.register_blueprint(api_registry.bp)
bp.register_blueprint(api_enroll.bp)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
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


@bp.get("/live")
@require_user
def live() -> Response:
    # The board's data lives beside its page (board_data imports this module's event format).
    from server.web.board_data import live_board

    # 50 supervisors watching the board cost one computation per scope a second, not 50
    # (benchmarks/live_board.py).
    scope = current_scope()
    build = lambda: json.dumps(live_board(get_session(), scope, utcnow()), ensure_ascii=False).encode()  # noqa: E731
    return Response(app_cache("board").get(scope.key(), build), mimetype="application/json")


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
