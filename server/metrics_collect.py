"""Operational metrics read from the database, so they are the same whichever process or worker is scraped."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.duty.tables import DutyDirty
from server.metrics_counts import BlockCounter
from server.metrics_text import Family, Sample
from server.models import Event, Finding, Reject, Terminal, utcnow

RECENT = timedelta(minutes=1)


@dataclass
class Counters:
    """Per-process caches of settled counts; one per web app."""

    events: BlockCounter = field(default_factory=BlockCounter)
    rejects: BlockCounter = field(default_factory=BlockCounter)


def _range_counter(session: Session, id_col, group_col=None):
    def count(lo: int, hi: int | None) -> Counter[str]:
        cols = (group_col, func.count()) if group_col is not None else (func.count(),)
        query = select(*cols).where(id_col > lo)
        if hi is not None:
            query = query.where(id_col <= hi)
        if group_col is None:
            return Counter({"": session.scalar(query) or 0})
        return Counter({str(group): n for group, n in session.execute(query.group_by(group_col))})

    return count


def _timestamp(moment: datetime | None) -> float | None:
    return moment.replace(tzinfo=UTC).timestamp() if moment is not None else None


def _ingest(session: Session, counters: Counters, now: datetime) -> list[Family]:
    mono = time.monotonic()
    stored, events_from = counters.events.totals(
        mono, session.scalar(select(func.max(Event.id))), _range_counter(session, Event.id)
    )
    # Rows received in the last minute have ids above the settled boundary (it is at least two minutes old).
    recent = session.scalar(select(func.count()).where(Event.id > events_from, Event.received_at >= now - RECENT))
    rejects, _ = counters.rejects.totals(
        mono, session.scalar(select(func.max(Reject.id))), _range_counter(session, Reject.id, Reject.reason)
    )
    return [
        Family(
            "guardpost_events_stored_total",
            "Events stored in the database, by every ingest process (rate() of it is the ingest rate); "
            "absent while a freshly started process is still counting past events.",
            "counter",
            () if stored is None else (Sample(stored.get("", 0)),),
        ),
        Family(
            "guardpost_events_stored_last_minute",
            "Events whose message was received in the last 60 seconds and is stored.",
            "gauge",
            (Sample(recent or 0),),
        ),
        Family(
            "guardpost_rejects_total",
            "Messages ingest refused and recorded in the rejects table, by reason.",
            "counter",
            () if rejects is None else tuple(Sample(n, {"reason": r}) for r, n in sorted(rejects.items())),
        ),
    ]


def _heartbeat(terminal: Any) -> dict[str, Any]:
    return terminal.heartbeat if isinstance(terminal.heartbeat, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _terminals(session: Session) -> list[Family]:
    rows = session.execute(
        select(
            Terminal.device_id,
            Terminal.site_id,
            Terminal.enabled,
            Terminal.online,
            Terminal.last_seen_at,
            Terminal.heartbeat,
        ).order_by(Terminal.device_id)
    ).all()
    states: Counter[str] = Counter({"online": 0, "offline": 0, "disabled": 0})
    online, outbox, clock, alarms, seen = [], [], [], [], []
    for row in rows:
        if not row.enabled:
            states["disabled"] += 1
            continue
        states["online" if row.online else "offline"] += 1
        labels = {"device_id": row.device_id, "site_id": row.site_id}
        online.append(Sample(1 if row.online else 0, labels))
        beat = _heartbeat(row)
        if (depth := _number(beat.get("outbox_depth"))) is not None:
            outbox.append(Sample(depth, labels))
        if isinstance(beat.get("clock_synced"), bool):
            clock.append(Sample(1 if beat["clock_synced"] else 0, labels))
        if isinstance(beat.get("alarms"), list):
            alarms.append(Sample(len(beat["alarms"]), labels))
        if (at := _timestamp(row.last_seen_at)) is not None:
            seen.append(Sample(at, labels))
    return [
        Family(
            "guardpost_terminals",
            "Registered terminals by state: online and offline as their retained status says, or disabled.",
            "gauge",
            tuple(Sample(n, {"state": state}) for state, n in sorted(states.items())),
        ),
        Family("guardpost_terminal_online", "1 when the terminal's status is online.", "gauge", tuple(online)),
        Family(
            "guardpost_terminal_outbox_depth",
            "Events waiting in the terminal's outbox, from its latest heartbeat.",
            "gauge",
            tuple(outbox),
        ),
        Family(
            "guardpost_terminal_clock_synced",
            "1 when the terminal's latest heartbeat says its clock is synchronised.",
            "gauge",
            tuple(clock),
        ),
        Family(
            "guardpost_terminal_alarms", "Alarms raised in the terminal's latest heartbeat.", "gauge", tuple(alarms)
        ),
        Family(
            "guardpost_terminal_last_seen_timestamp_seconds",
            "Unix time of the last message from the terminal.",
            "gauge",
            tuple(seen),
        ),
    ]


def _backlog(session: Session) -> list[Family]:
    findings = session.execute(
        select(Finding.kind, func.count()).where(Finding.resolved_at.is_(None)).group_by(Finding.kind)
    ).all()
    queued, oldest = session.execute(select(func.count(), func.min(DutyDirty.marked_at))).one()
    return [
        Family(
            "guardpost_findings_open",
            "Findings not yet resolved, by kind.",
            "gauge",
            tuple(Sample(n, {"kind": kind}) for kind, n in sorted(findings)),
        ),
        Family(
            "guardpost_duty_recompute_queue",
            "Site days waiting for their duty log to be recomputed.",
            "gauge",
            (Sample(queued or 0),),
        ),
        Family(
            "guardpost_duty_recompute_oldest_timestamp_seconds",
            "Unix time the oldest queued site day was queued (absent when the queue is empty).",
            "gauge",
            () if oldest is None else (Sample(_timestamp(oldest) or 0.0),),
        ),
    ]


def collect(session: Session, counters: Counters) -> list[Family]:
    """Every metric, from a handful of aggregate queries; the scrape's own duration comes last."""
    started = time.perf_counter()
    families = _ingest(session, counters, utcnow()) + _terminals(session) + _backlog(session)
    families.append(
        Family(
            "guardpost_metrics_collect_seconds",
            "Time the database queries of this scrape took.",
            "gauge",
            (Sample(round(time.perf_counter() - started, 6)),),
        )
    )
    return families
