"""Write one batch of checked messages in one session: events (bulk, once each), terminals, rejects, findings.

Besides ingest's own findings (sequence gaps, clocks), new events raise compliance findings and mark the
duty days they touch for recomputation, in the same transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.bulk_insert import insert_rows
from server.clock_correction import SYNCED, ClockVerdict, naive_utc
from server.clock_store import check_clocks
from server.compliance import event_findings
from server.compliance import store as store_findings
from server.duty.service import dirty_days_for_events, mark_dirty
from server.ingest_rules import AcceptedEvent, HeartbeatUpdate, Refused, StatusUpdate, Verdict, clean_text, excerpt
from server.models import Event, Reject, Terminal
from server.sequence_store import track_sequences

log = logging.getLogger("guardpost.ingest")


# NamedTuples rather than dataclasses: one of each per message, and tuples are the cheapest to build.
class Message(NamedTuple):
    """One MQTT message as ingest received it; ``received_at`` is naive UTC."""

    topic: str
    payload: bytes
    received_at: datetime


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
    terminals: Mapping[str, Terminal],
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
    fresh = _new_events(session, events, outcomes) if events else []
    received = [(accepted, messages[i].received_at) for i, accepted in fresh]
    if received or heartbeats:
        # Before the insert: a synced heartbeat may date stored events, and each new row carries its verdict.
        clocks = check_clocks(session, terminals, received, heartbeats, now)
        _store_events(session, received, clocks, terminals, now)
    return [o for o in outcomes if o is not None]  # every message has one by now


def _new_events(
    session: Session, events: list[tuple[int, AcceptedEvent]], outcomes: list[Outcome | None]
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
        if not duplicate:
            known.add(accepted.event_id)
            fresh.append((i, accepted))
    return fresh


def _store_events(
    session: Session,
    received: list[tuple[AcceptedEvent, datetime]],
    clocks: Mapping[int, ClockVerdict],
    terminals: Mapping[str, Terminal],
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
    # Compliance findings and the duty days to recompute read events by attribute; rows are not ORM objects.
    stored = [
        SimpleNamespace(**(row | {"payload": accepted.raw})) for row, (accepted, _r) in zip(rows, received, strict=True)
    ]
    store_findings(session, event_findings(session, stored))
    mark_dirty(session, dirty_days_for_events(session, stored))


def stored_event_ids(session: Session, event_ids: set[str]) -> set[str]:
    """Which of these ids are stored already: one query per batch."""
    return set(session.scalars(select(Event.event_id).where(Event.event_id.in_(sorted(event_ids)))))


def _seen(terminal: Terminal, received_at: datetime) -> None:
    if terminal.last_seen_at is None or terminal.last_seen_at < received_at:
        terminal.last_seen_at = received_at


def _row(accepted: AcceptedEvent, received_at: datetime, clock: ClockVerdict | None) -> dict[str, Any]:
    event, match = accepted.event, accepted.event.match
    captured_at = naive_utc(event.captured_at)
    if clock is None:  # a synced clock: the terminal's time is the time
        clock = ClockVerdict(SYNCED, captured_at)
    return {
        "event_id": accepted.event_id,
        "device_id": event.device_id,
        "site_id": event.site_id,
        "seq": event.seq,
        "type": event.type,
        "method": event.method,
        "guard_id": event.guard_id,
        "captured_at": captured_at,
        "clock_synced": event.clock_synced,
        "received_at": received_at,
        "corrected_at": clock.corrected_at,
        "clock_status": clock.status,
        "boot_id": event.boot_id,
        "monotonic_s": event.monotonic_s,
        "distance": match.distance if match else None,
        "margin": match.margin if match else None,
        "liveness": match.liveness if match else None,
        "payload": accepted.text,  # JSON text: stored as received, not serialised a second time
    }
