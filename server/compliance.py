"""Compliance findings raised as events are stored, and by the monitor: licences, postings, faces, terminals."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import cache

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from server.guard_records import status_on
from server.models import Assignment, Credential, Event, Finding, Terminal
from server.sql_batch import among, listed

PUNCH_TYPES = ("check_in", "check_out", "patrol")


def _finding(kind: str, key: str, severity: str, detail: str, event: Event | None = None, **ids: str | None) -> Finding:
    return Finding(
        key=key[:200],
        kind=kind,
        severity=severity,
        detail=detail,
        site_id=ids.get("site_id") or (event.site_id if event else None),
        device_id=ids.get("device_id") or (event.device_id if event else None),
        guard_id=ids.get("guard_id") or (event.guard_id if event else None),
        event_id=event.event_id if event else None,
    )


def event_findings(session: Session, events: Iterable[Event]) -> list[Finding]:
    """Findings for newly stored events; keys make a replay or a second event of the same day a no-op."""
    events = list(events)
    punches = [e for e in events if e.type in PUNCH_TYPES and e.guard_id is not None]
    found: list[Finding] = []
    if punches:
        today = max(e.captured_at for e in punches).date()
        statuses, postings = _registry(session, {e.guard_id for e in punches}, today)
        seen: set[tuple[str, str, str]] = set()
        for e in punches:
            day = e.captured_at.date().isoformat()
            if (e.guard_id, e.site_id, day) in seen:
                continue  # one check per guard, site and day: the findings' keys would repeat anyway
            seen.add((e.guard_id, e.site_id, day))
            status = statuses.get(e.guard_id, "missing")
            if status != "valid":
                # 持证上岗: working without a valid guard certificate is a violation the police look for.
                detail = f"guard {e.guard_id} checked in at {e.site_id} with a {status} guard certificate"
                found.append(_finding(f"certificate_{status}", f"cert:{e.guard_id}:{day}", "violation", detail, e))
            posted = any(
                s == e.site_id and start <= e.captured_at and (end is None or end > e.captured_at)
                for s, start, end in postings.get(e.guard_id, ())
            )
            if not posted:
                detail = f"guard {e.guard_id} checked in at {e.site_id}, where they are not posted"
                found.append(
                    _finding("not_assigned", f"unassigned:{e.guard_id}:{e.site_id}:{day}", "violation", detail, e)
                )
    for e in events:
        if e.type != "denied":
            continue
        # The payload as the ORM reads it (a dict) or as ingest stores it (JSON text).
        payload = json.loads(e.payload) if isinstance(e.payload, str) else e.payload
        candidate = payload.get("candidate_guard_id") if isinstance(payload, dict) else None
        if candidate:
            detail = f"near miss at {e.device_id}: looked like {candidate} (distance {e.distance}); confirm or reject"
            found.append(
                _finding("borderline_match", f"borderline:{e.event_id}", "review", detail, e, guard_id=candidate)
            )
        else:
            found.append(_finding("unknown_face", f"unknown:{e.event_id}", "warning", f"refused at {e.device_id}", e))
    return found


def _registry(
    session: Session, guard_ids: set[str], today: date
) -> tuple[dict[str, str], dict[str, list[tuple[str, datetime, datetime | None]]]]:
    """Certificate status and postings of these guards: two Core reads (ingest makes them once per batch)."""
    session.flush()  # Core reads do not autoflush
    connection = session.connection()
    dialect = connection.dialect.name
    certificates, postings_query = _registry_queries(dialect)
    params = {"guards": listed(guard_ids, dialect)}
    held: dict[str, list[tuple[date | None, date | None]]] = {g: [] for g in guard_ids}
    for guard_id, issued_on, valid_until in connection.execute(certificates, params):
        held[guard_id].append((issued_on, valid_until))
    postings: dict[str, list[tuple[str, datetime, datetime | None]]] = {}
    for guard_id, site_id, start, end in connection.execute(postings_query, params):
        postings.setdefault(guard_id, []).append((site_id, start, end))
    return {g: status_on(dates, today) for g, dates in held.items()}, postings


@cache
def _registry_queries(dialect: str) -> tuple[Select, Select]:
    certificates = select(Credential.guard_id, Credential.issued_on, Credential.valid_until).where(
        among(Credential.guard_id, "guards", dialect), Credential.kind == "certificate"
    )
    postings = select(Assignment.guard_id, Assignment.site_id, Assignment.start, Assignment.end).where(
        among(Assignment.guard_id, "guards", dialect)
    )
    return certificates, postings


def store(session: Session, findings: list[Finding]) -> int:
    """Add the findings whose key is new; returns how many."""
    if not findings:
        return 0
    unique = {f.key: f for f in findings}
    known = set(session.scalars(select(Finding.key).where(Finding.key.in_(list(unique)))))
    new = [f for key, f in unique.items() if key not in known]
    session.add_all(new)
    return len(new)


def terminal_offline_findings(session: Session, now: datetime, after: timedelta) -> tuple[int, int]:
    """Raise one finding per outage of a terminal silent for longer than ``after``; resolve it when it is back.

    ``now`` is naive UTC like every stored time. Returns (raised, resolved).
    """
    terminals = session.scalars(select(Terminal).where(Terminal.enabled.is_(True))).all()
    open_rows = {
        f.device_id: f
        for f in session.scalars(
            select(Finding).where(Finding.kind == "terminal_offline", Finding.resolved_at.is_(None))
        )
    }
    raised = resolved = 0
    for t in terminals:
        silent = t.last_seen_at is None or now - t.last_seen_at > after
        finding = open_rows.get(t.device_id)
        if silent and finding is None and t.last_seen_at is not None:
            since = t.last_seen_at.isoformat(timespec="seconds")
            detail = f"terminal {t.device_id} at {t.site_id} silent since {since} UTC; events wait in its outbox"
            raised += store(
                session,
                [
                    _finding(
                        "terminal_offline",
                        f"offline:{t.device_id}:{since}",
                        "warning",
                        detail,
                        site_id=t.site_id,
                        device_id=t.device_id,
                    )
                ],
            )
        elif not silent and finding is not None:
            finding.resolved_at, finding.resolved_by = now, "terminal back online"
            resolved += 1
    return raised, resolved
