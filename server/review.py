"""Review of borderline matches: a supervisor confirms (the candidate's check-in) or rejects, with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from protocol.signing import canonical_json
from server.compliance import event_findings
from server.compliance import store as store_findings
from server.duty.service import dirty_days_for_events, recompute
from server.models import Event, Finding, ReviewDecision
from server.registry import RegistryError

REVIEW_KIND = "borderline_match"
DECISIONS = ("confirmed", "rejected")
MAX_REASON = 2000
CANONICAL_VERSION = "guardpost.review_decision.v1"


class ReviewError(RegistryError):
    """A decision that cannot be taken (wrong finding, already decided, no reason); the message says why."""


def _immutable(_mapper, _connection, target: ReviewDecision) -> None:
    raise ReviewError(f"review decision {target.id} is a permanent record; it cannot be changed or deleted")


# A decision is evidence: the ORM refuses to rewrite or drop one, so only raw SQL could (and the chain would show it).
orm_event.listen(ReviewDecision, "before_update", _immutable)
orm_event.listen(ReviewDecision, "before_delete", _immutable)


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def canonical_fields(decision: ReviewDecision) -> dict[str, Any]:
    """The decision as plain values, every field that gives it meaning, times as RFC 3339 UTC."""
    return {
        "schema": CANONICAL_VERSION,
        "id": decision.id,
        "finding_id": decision.finding_id,
        "event_id": decision.event_id,
        "site_id": decision.site_id,
        "device_id": decision.device_id,
        "guard_id": decision.guard_id,
        "decision": decision.decision,
        "reason": decision.reason,
        "decided_by": decision.decided_by,
        "decided_at": _iso(decision.decided_at),
    }


def canonical(decision: ReviewDecision) -> bytes:
    """The exact bytes an audit chain hashes: canonical JSON (sorted keys, no spaces, UTF-8), like event signatures."""
    return canonical_json(canonical_fields(decision))


def candidate_of(event: Event) -> str | None:
    payload = event.payload if isinstance(event.payload, dict) else {}
    candidate = payload.get("candidate_guard_id")
    return candidate if isinstance(candidate, str) and candidate else None


def _reviewable(session: Session, finding: Finding) -> Event:
    if finding.kind != REVIEW_KIND:
        raise ReviewError(f"finding {finding.id} is a {finding.kind} finding; only borderline matches are reviewed")
    if finding.resolved_at is not None:
        raise ReviewError(f"finding {finding.id} was already resolved by {finding.resolved_by}")
    event = session.scalar(select(Event).where(Event.event_id == finding.event_id)) if finding.event_id else None
    if event is None or event.type != "denied" or candidate_of(event) is None:
        raise ReviewError(f"finding {finding.id} has no denied event with a candidate guard to review")
    return event


def decide(session: Session, finding: Finding, decision: str, reason: str, by: str, now: datetime) -> ReviewDecision:
    """Record the decision, resolve the finding and, for a confirmation, rebuild the duty log of that site-day.

    ``now`` is naive UTC. The caller commits; a concurrent decision on the same event fails at the unique key.
    """
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    reason = reason.strip()
    if not reason:
        raise ReviewError("a review decision needs a reason (what you checked: CCTV, a call to the guard...)")
    if len(reason) > MAX_REASON:
        raise ReviewError(f"the reason is longer than {MAX_REASON} characters")
    event = _reviewable(session, finding)
    row = ReviewDecision(
        finding_id=finding.id,
        event_id=event.event_id,
        site_id=event.site_id,
        device_id=event.device_id,
        guard_id=candidate_of(event),
        decision=decision,
        reason=reason,
        decided_by=by,
        decided_at=now,
    )
    session.add(row)
    finding.resolved_at, finding.resolved_by = now, by
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ReviewError(f"the event of finding {finding.id} was decided by someone else meanwhile") from None
    if decision == "confirmed":
        _count_as_check_in(session, event, row.guard_id, now)
    return row


def _count_as_check_in(session: Session, event: Event, guard_id: str, now: datetime) -> None:
    # A transient stand-in, never added to the session: the stored event stays as the terminal signed it.
    punch = Event(
        event_id=event.event_id,
        device_id=event.device_id,
        site_id=event.site_id,
        type="check_in",
        method=event.method,
        guard_id=guard_id,
        captured_at=event.corrected_at or event.captured_at,
        payload={},
    )
    # The same licence and posting checks ingest runs on any check-in.
    store_findings(session, event_findings(session, [punch]))
    days = sorted(day for _site, day in dirty_days_for_events(session, [punch]))
    recompute(session, [event.site_id], days[0], days[-1], now.replace(tzinfo=UTC))


def decisions_for(session: Session, finding_ids: list[int]) -> dict[int, ReviewDecision]:
    if not finding_ids:
        return {}
    rows = session.scalars(select(ReviewDecision).where(ReviewDecision.finding_id.in_(finding_ids)))
    return {row.finding_id: row for row in rows}
