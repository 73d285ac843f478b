"""Borderline matches a supervisor confirmed: they count as the candidate's check-ins in the duty log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.duty.records import Punch
from server.models import Event, ReviewDecision


def confirmed_punches(session: Session, site_ids: Iterable[str], start: datetime, end: datetime) -> list[Punch]:
    """Check-in punches for confirmed reviews of events captured between ``start`` and ``end`` (aware UTC).

    The stored event stays as the terminal signed it (denied); the decision row is what turns it into a punch.
    """
    naive = (start.astimezone(UTC).replace(tzinfo=None), end.astimezone(UTC).replace(tzinfo=None))
    rows = session.execute(
        select(Event, ReviewDecision.guard_id)
        .join(ReviewDecision, ReviewDecision.event_id == Event.event_id)
        .where(
            ReviewDecision.decision == "confirmed",
            Event.site_id.in_(sorted(set(site_ids))),
            Event.captured_at.between(*naive),
        )
    ).all()
    return [confirmed_punch(event, guard_id) for event, guard_id in rows]


def confirmed_punch(event: Event, guard_id: str) -> Punch:
    at = event.corrected_at or event.captured_at  # a re-dated unsynced clock wins, as for any punch
    return Punch(
        event.event_id,
        guard_id,
        event.site_id,
        event.device_id,
        "check_in",
        at.replace(tzinfo=UTC),
        event.method,
        event.distance,
        event.liveness,
    )
