"""The live duty board as data: per site and post, who is on duty since when and how verified; terminal states."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, and_, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from server.models import Event, Guard, Post, ReviewDecision, Site, Terminal
from server.scope import Scope
from server.web.api import _event_json, _time

DUTY_WINDOW = timedelta(hours=24)
SINCE_LOOKBACK = 2 * DUTY_WINDOW
ON_DUTY_TYPES = ("check_in", "patrol")
LATEST_EVENTS = 20


def _accepted_punches(site_ids, since: datetime):
    """Events that put a guard somewhere: accepted ones, and denied ones a supervisor confirmed as check-ins."""
    accepted = select(
        Event.id,
        Event.site_id,
        Event.guard_id,
        Event.type,
        Event.method,
        Event.device_id,
        Event.captured_at,
        Event.distance,
        Event.liveness,
        literal(None, String).label("reviewed_by"),
    ).where(
        Event.captured_at >= since, Event.type != "denied", Event.guard_id.is_not(None), Event.site_id.in_(site_ids)
    )
    confirmed = (
        select(
            Event.id,
            Event.site_id,
            ReviewDecision.guard_id,
            literal("check_in", String),
            Event.method,
            Event.device_id,
            Event.captured_at,
            Event.distance,
            Event.liveness,
            ReviewDecision.decided_by,
        )
        .join(ReviewDecision, ReviewDecision.event_id == Event.event_id)
        .where(ReviewDecision.decision == "confirmed", Event.captured_at >= since, Event.site_id.in_(site_ids))
    )
    return union_all(accepted, confirmed).subquery()


def _started(session: Session, guard_ids: list[str], now: datetime) -> dict[tuple[str, str], datetime]:
    """When each duty began: the first check-in (or confirmed one) after the guard's last check-out at the site.

    A long shift can begin before the duty window, but no duty outlasts two of them: bounding the look-up
    keeps it off the whole history (106 ms -> 10 ms for 2,000 guards with a month of events).
    """
    horizon = now - SINCE_LOOKBACK
    last_out = (
        select(Event.site_id, Event.guard_id, func.max(Event.captured_at).label("at"))
        .where(Event.type == "check_out", Event.guard_id.in_(guard_ids), Event.captured_at >= horizon)
        .group_by(Event.site_id, Event.guard_id)
        .subquery()
    )
    started: dict[tuple[str, str], datetime] = {}
    direct = (
        select(Event.site_id, Event.guard_id, func.min(Event.captured_at))
        .where(Event.type == "check_in", Event.guard_id.in_(guard_ids), Event.captured_at >= horizon)
        .outerjoin(last_out, and_(last_out.c.site_id == Event.site_id, last_out.c.guard_id == Event.guard_id))
        .where(last_out.c.at.is_(None) | (Event.captured_at > last_out.c.at))
        .group_by(Event.site_id, Event.guard_id)
    )
    reviewed = (
        select(Event.site_id, ReviewDecision.guard_id, func.min(Event.captured_at))
        .join(ReviewDecision, ReviewDecision.event_id == Event.event_id)
        .where(ReviewDecision.decision == "confirmed", ReviewDecision.guard_id.in_(guard_ids))
        .where(Event.captured_at >= horizon)
        .outerjoin(last_out, and_(last_out.c.site_id == Event.site_id, last_out.c.guard_id == ReviewDecision.guard_id))
        .where(last_out.c.at.is_(None) | (Event.captured_at > last_out.c.at))
        .group_by(Event.site_id, ReviewDecision.guard_id)
    )
    for query in (direct, reviewed):
        for site_id, guard_id, when in session.execute(query):
            key = (site_id, guard_id)
            started[key] = min(when, started.get(key, when))
    return started


def on_duty(session: Session, site_ids, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Guards whose latest punch in the duty window, per site, starts or continues a duty; ``now`` naive UTC."""
    punches = _accepted_punches(site_ids, now - DUTY_WINDOW)
    rank = func.row_number().over(
        partition_by=(punches.c.site_id, punches.c.guard_id),
        order_by=(punches.c.captured_at.desc(), punches.c.id.desc()),
    )
    latest = select(punches, rank.label("rank")).subquery()
    rows = session.execute(
        select(latest, Guard.name.label("guard_name"), Terminal.post_id)
        .outerjoin(Guard, Guard.guard_id == latest.c.guard_id)
        .outerjoin(Terminal, Terminal.device_id == latest.c.device_id)
        .where(latest.c.rank == 1, latest.c.type.in_(ON_DUTY_TYPES))
        .order_by(latest.c.site_id, Guard.name, latest.c.guard_id)
    ).all()
    if not rows:
        return {}
    started = _started(session, sorted({r.guard_id for r in rows}), now)
    by_site: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_site.setdefault(row.site_id, []).append(
            {
                "guard_id": row.guard_id,
                "name": row.guard_name,
                "since": _time(started.get((row.site_id, row.guard_id), row.captured_at)),
                "last_seen": _time(row.captured_at),
                "method": row.method,
                "distance": row.distance,
                "liveness": row.liveness,
                "reviewed_by": row.reviewed_by,
                "device_id": row.device_id,
                "post_id": row.post_id,
            }
        )
    return by_site


def terminal_json(terminal: Terminal) -> dict[str, Any]:
    heartbeat = terminal.heartbeat if isinstance(terminal.heartbeat, dict) else {}
    return {
        "device_id": terminal.device_id,
        "post_id": terminal.post_id,
        "online": terminal.online,
        "last_seen_at": _time(terminal.last_seen_at),
        "outbox_depth": heartbeat.get("outbox_depth"),
        "clock_synced": heartbeat.get("clock_synced"),
        "alarms": heartbeat.get("alarms") or [],
    }


def _posts(posts: list[Post], guards: list[dict], terminals: list[dict]) -> list[dict[str, Any]]:
    """The site's posts with their guards and terminals; what belongs to no post comes last, under null."""
    groups = [{"post_id": p.post_id, "name": p.name, "on_duty": [], "terminals": []} for p in posts]
    by_id = {g["post_id"]: g for g in groups}
    loose = {"post_id": None, "name": None, "on_duty": [], "terminals": []}
    for key, items in (("on_duty", guards), ("terminals", terminals)):
        for item in items:
            by_id.get(item["post_id"], loose)[key].append(item)
    return groups + ([loose] if loose["on_duty"] or loose["terminals"] else [])


def live_board(session: Session, scope: Scope, now: datetime) -> dict[str, Any]:
    """The board for ``scope`` at ``now`` (naive UTC): sites, their posts, guards on duty and terminals."""
    visible = scope.site_ids_query()
    guards = on_duty(session, visible, now)
    terminals: dict[str, list[dict[str, Any]]] = {}
    in_scope = select(Terminal).where(Terminal.site_id.in_(visible))
    for terminal in session.scalars(in_scope.order_by(Terminal.site_id, Terminal.device_id)):
        terminals.setdefault(terminal.site_id, []).append(terminal_json(terminal))
    posts: dict[str, list[Post]] = {}
    for post in session.scalars(select(Post).where(Post.site_id.in_(visible)).order_by(Post.site_id, Post.post_id)):
        posts.setdefault(post.site_id, []).append(post)
    sites = session.scalars(select(Site).where(scope.site_clause()).order_by(Site.site_id)).all()
    return {
        "generated_at": _time(now),
        "sites": [
            {
                "site_id": site.site_id,
                "name": site.name,
                "on_duty": guards.get(site.site_id, []),
                "terminals": terminals.get(site.site_id, []),
                "posts": _posts(
                    posts.get(site.site_id, []), guards.get(site.site_id, []), terminals.get(site.site_id, [])
                ),
            }
            for site in sites
        ],
    }


def latest_events(session: Session, scope: Scope, limit: int = LATEST_EVENTS) -> list[dict[str, Any]]:
    """The newest events in scope, denied ones included, as the events API shows them."""
    query = select(Event, Guard.name).outerjoin(Guard, Guard.guard_id == Event.guard_id)
    if not scope.everything:
        query = query.where(Event.site_id.in_(scope.site_ids_query()))
    rows = session.execute(query.order_by(Event.captured_at.desc(), Event.id.desc()).limit(limit)).all()
    return [_event_json(row.Event, row.name) for row in rows]


def board_version(session: Session, scope: Scope) -> tuple:
    """Cheap to read every second: changes whenever the board may have (new events, decisions, terminal states)."""
    visible = scope.site_ids_query()
    terminals = session.execute(
        select(func.count(), func.sum(cast(Terminal.online, Integer)), func.max(Terminal.last_seen_at)).where(
            Terminal.site_id.in_(visible)
        )
    ).one()
    return (
        session.scalar(select(func.max(Event.id))),
        session.scalar(select(func.max(ReviewDecision.id))),
        session.scalar(select(func.count()).select_from(Site).where(scope.site_clause())),
        session.scalar(select(func.count()).select_from(Post).where(Post.site_id.in_(visible))),
        tuple(terminals),
    )
