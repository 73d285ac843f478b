"""Write one batch of checked messages in one session: events (bulk, once each), terminals, rejects, findings.

Besides ingest's own findings (sequence gaps, clocks), new events raise compliance findings and mark the
duty days they touch for recomputation, in the same transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import NamedTuple

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from server.bulk_insert import insert_rows
from server.clock_correction import SYNCED, ClockVerdict, naive_utc
from server.clock_store import check_clocks
from server.compliance import event_findings
from server.compliance import store as store_findings
from server.duty.service import dirty_days_for_events, mark_dirty
from server.ingest_rules import AcceptedEvent, HeartbeatUpdate, Refused, StatusUpdate, Verdict, clean_text, excerpt
from server.ingest_terminals import TerminalRow
from server.models import Event, Reject
from server.sequence_store import track_sequences
from server.sql_batch import among, listed

log = logging.getLogger("guardpost.ingest")
# A copy of an event first stored longer ago than this is recorded as a replay (and still acked).
STALE_REPLAY = timedelta(hours=6)


# NamedTuples rather than dataclasses: one of each per message, and tuples are the cheapest to build.
class Message(NamedTuple):
    """One MQTT message as ingest received it; ``received_at`` is naive UTC."""

    topic: str
    payload: bytes
    received_at: datetime


class EventRow(NamedTuple):
    """A new row of the events table (fields named as its columns); compliance and duty days read it too."""

    event_id: str
    device_id: str
    site_id: str
    seq: int
    type: str
    method: str
    guard_id: str | None
    captured_at: datetime  # naive UTC, as every stored time
    clock_synced: bool
    received_at: datetime
    corrected_at: datetime | None
    clock_status: str
    boot_id: str | None
    monotonic_s: float | None
    distance: float | None
    margin: float | None
    liveness: str | None
    payload: str  # JSON text: stored as received, not serialised a second time


class Outcome(NamedTuple):
    """What happened to one message; ``ack_event_id`` is set when the terminal must be acked."""

    kind: str
    stored: bool = False
    duplicate: bool = False
    reject_reason: str | None = None
    site_id: str | None = None
    device_id: str | None = None
    ack_event_id: str | None = None


def reject_row(message: Message, reason: str, detail: str, device_id: str | None) -> Reject:
    log.warning("rejected message on %s: %s: %s", message.topic[:200], reason, detail[:300])
    return Reject(
        topic=clean_text(message.topic, 300),
        device_id=device_id,
        reason=reason,
        detail=clean_text(detail, 2000),
        payload_excerpt=excerpt(message.payload),
        payload_size=len(message.payload),
        received_at=message.received_at,
    )


def store_batch(
    session: Session,
    messages: Sequence[Message],
    verdicts: Sequence[Verdict],
    terminals: Mapping[str, TerminalRow],
    now: datetime,
) -> list[Outcome]:
    """Add everything the verdicts say to ``session`` (the caller commits); an outcome per message, in order."""
    outcomes: list[Outcome | None] = [None] * len(messages)
    events: list[tuple[int, AcceptedEvent]] = []
    heartbeats: list[HeartbeatUpdate] = []
    for i, (message, verdict) in enumerate(zip(messages, verdicts, strict=True)):
        if isinstance(verdict, AcceptedEvent):
            events.append((i, verdict))
            continue
        if isinstance(verdict, Refused):
            session.add(reject_row(message, verdict.reason, verdict.detail, verdict.device_id))
            outcomes[i] = Outcome(kind="reject", reject_reason=verdict.reason, device_id=verdict.device_id)
            continue
        if isinstance(verdict, StatusUpdate) and verdict.online is None:
            outcomes[i] = Outcome(kind="status")
            continue
        terminal = terminals[verdict.device_id]
        if isinstance(verdict, StatusUpdate):
            terminal.online = verdict.online
            kind = "status"
        else:
            terminal.heartbeat = verdict.data
            heartbeats.append(verdict)
            kind = "heartbeat"
        _seen(terminal, message.received_at)
        outcomes[i] = Outcome(kind=kind, stored=True, site_id=terminal.site_id, device_id=terminal.device_id)
    fresh = _new_events(session, messages, events, outcomes) if events else []
    received = [(accepted, messages[i].received_at) for i, accepted in fresh]
    if received or heartbeats:
        # Before the insert: a synced heartbeat may date stored events, and each new row carries its verdict.
        clocks = check_clocks(session, terminals, received, heartbeats, now)
        _store_events(session, received, clocks, terminals, now)
    return [o for o in outcomes if o is not None]  # every message has one by now


def _new_events(
    session: Session,
    messages: Sequence[Message],
    events: list[tuple[int, AcceptedEvent]],
    outcomes: list[Outcome | None],
) -> list[tuple[int, AcceptedEvent]]:
    """Set each event's outcome; returns those not stored before (the first copy of each)."""
    # An id already stored, or earlier in this batch, is a replay: acked again, stored nothing.
    known = stored_event_ids(session, {accepted.event_id for _i, accepted in events})
    fresh: list[tuple[int, AcceptedEvent]] = []
    for i, accepted in events:
        duplicate = accepted.event_id in known
        outcomes[i] = Outcome(
            kind="events",
            stored=not duplicate,
            duplicate=duplicate,
            site_id=accepted.site_id,
            device_id=accepted.device_id,
            ack_event_id=accepted.event_id,
        )
        first_stored = known.get(accepted.event_id)
        if first_stored is not None and messages[i].received_at - first_stored > STALE_REPLAY:
            # Redeliveries come within minutes; a copy of an event stored long ago is someone replaying it.
            detail = f"event {accepted.event_id} was stored at {first_stored:%Y-%m-%d %H:%M} UTC; acked, not stored"
            session.add(reject_row(messages[i], "replayed", detail, accepted.device_id))
        if not duplicate:
            known[accepted.event_id] = messages[i].received_at
            fresh.append((i, accepted))
    return fresh


def _store_events(
    session: Session,
    received: list[tuple[AcceptedEvent, datetime]],
    clocks: Mapping[int, ClockVerdict],
    terminals: Mapping[str, TerminalRow],
    now: datetime,
) -> None:
    if not received:
        return
    rows = [_row(accepted, received_at, clocks.get(n)) for n, (accepted, received_at) in enumerate(received)]
    insert_rows(session, Event.__table__, rows)
    seqs: dict[str, list[int]] = defaultdict(list)
    for accepted, received_at in received:
        seqs[accepted.device_id].append(accepted.event.seq)
        _seen(terminals[accepted.device_id], received_at)
    track_sequences(session, terminals, seqs, now)
    store_findings(session, event_findings(session, rows))
    mark_dirty(session, dirty_days_for_events(session, rows))


def stored_event_ids(session: Session, event_ids: set[str]) -> dict[str, datetime]:
    """Which of these ids are stored already, and when each was received: one query per batch."""
    connection = session.connection()
    dialect = connection.dialect.name
    rows = connection.execute(_stored_query(dialect), {"ids": listed(event_ids, dialect)})
    return {event_id: received_at for event_id, received_at in rows}


@cache
def _stored_query(dialect: str) -> Select:
    return select(Event.event_id, Event.received_at).where(among(Event.event_id, "ids", dialect))


def _seen(terminal: TerminalRow, received_at: datetime) -> None:
    if terminal.last_seen_at is None or terminal.last_seen_at < received_at:
        terminal.last_seen_at = received_at


def _row(accepted: AcceptedEvent, received_at: datetime, clock: ClockVerdict | None) -> EventRow:
    event = accepted.event
    captured_at = naive_utc(event.captured_at)
    # No verdict: a synced clock, whose time is the time.
    corrected_at, status = (captured_at, SYNCED) if clock is None else (clock.corrected_at, clock.status)
    return EventRow(
        event.event_id,
        event.device_id,
        event.site_id,
        event.seq,
        event.type,
        event.method,
        event.guard_id,
        captured_at,
        event.clock_synced,
        received_at,
        corrected_at,
        status,
        event.boot_id,
        event.monotonic_s,
        event.distance,
        event.margin,
        event.liveness,
        accepted.text,
    )
