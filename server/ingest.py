"""Ingest: store a batch of MQTT messages in one transaction: events once, rejects with reasons, findings."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server import clock_correction as clock
from server.compliance import event_findings, store
from server.duty.service import dirty_days_for_events, mark_dirty
from server.ingest_rules import (
    AcceptedEvent,
    HeartbeatUpdate,
    Refused,
    StatusUpdate,
    TerminalInfo,
    check_message,
    clean_text,
    device_of,
    excerpt,
)
from server.models import Event, Finding, Reject, Terminal, utcnow
from server.sequence import GAP_KIND, Gap, advance, parse_gap_key, remaining

log = logging.getLogger("guardpost.ingest")


@dataclass(frozen=True)
class Outcome:
    """What happened to one message; ``ack_event_id`` is set when the terminal must be acked."""

    kind: str
    stored: bool = False
    duplicate: bool = False
    reject_reason: str | None = None
    site_id: str | None = None
    device_id: str | None = None
    ack_event_id: str | None = None


class Ingestor:
    """Turns (topic, payload) pairs into committed rows. Raises only on infrastructure failure (DB down)."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def record_reject(self, topic: str, device_id: str | None, payload: bytes, reason: str, detail: str) -> Outcome:
        with self._sessions() as session:
            self._apply(session, {}, topic, payload, Refused(reason, detail, device_id), set(), [], utcnow())
            session.commit()
        return Outcome(kind="reject", reject_reason=reason, device_id=device_id)

    def handle(self, topic: str, payload: bytes) -> Outcome:
        return self.handle_batch([(topic, payload)])[0]

    def handle_batch(self, messages: list[tuple[str, bytes]]) -> list[Outcome]:
        try:
            return self._batch(messages)
        except IntegrityError:
            if len(messages) == 1:
                return self._batch(messages)  # the rival's row is visible now: a plain duplicate
            # Another ingest process stored one of these ids meanwhile: redo them one by one.
            return [self._batch([message])[0] for message in messages]

    def _batch(self, messages: list[tuple[str, bytes]]) -> list[Outcome]:
        with self._sessions() as session:
            devices = {d for d in (device_of(topic) for topic, _ in messages) if d}
            terminals = {
                t.device_id: t for t in session.scalars(select(Terminal).where(Terminal.device_id.in_(devices)))
            }
            infos = {d: TerminalInfo(t.device_id, t.site_id, t.secret, t.enabled) for d, t in terminals.items()}
            verdicts = [check_message(topic, payload, infos.get(device_of(topic) or "")) for topic, payload in messages]
            accepted = [v for v in verdicts if isinstance(v, AcceptedEvent)]
            known = self._known_ids(session, accepted)
            now = utcnow()
            outcomes: list[Outcome] = []
            new_events: list[Event] = []
            for (topic, payload), verdict in zip(messages, verdicts, strict=True):
                outcomes.append(self._apply(session, terminals, topic, payload, verdict, known, new_events, now))
            session.add_all(new_events)
            session.flush()
            self._sequence_findings(session, terminals, new_events)
            beats = {v.device_id for v in verdicts if isinstance(v, HeartbeatUpdate)}
            self._clock(session, terminals, new_events, beats)
            store(session, event_findings(session, new_events))
            mark_dirty(session, dirty_days_for_events(session, new_events))
            session.commit()
        return outcomes

    @staticmethod
    def _known_ids(session: Session, accepted: list[AcceptedEvent]) -> set[str]:
        ids = [a.event_id for a in accepted]
        return set(session.scalars(select(Event.event_id).where(Event.event_id.in_(ids)))) if ids else set()

    def _apply(self, session, terminals, topic, payload, verdict, known: set[str], new_events, now) -> Outcome:
        if isinstance(verdict, Refused):
            log.warning("rejected message on %s: %s: %s", topic[:200], verdict.reason, verdict.detail[:300])
            session.add(
                Reject(
                    topic=clean_text(topic, 300),
                    device_id=verdict.device_id,
                    reason=verdict.reason,
                    detail=clean_text(verdict.detail, 2000),
                    payload_excerpt=excerpt(payload),
                    payload_size=len(payload),
                )
            )
            return Outcome(kind="reject", reject_reason=verdict.reason, device_id=verdict.device_id)
        if isinstance(verdict, StatusUpdate):
            if verdict.online is not None:
                terminal = terminals[verdict.device_id]
                terminal.online, terminal.last_seen_at = verdict.online, now
            return Outcome(kind="status", stored=verdict.online is not None, device_id=verdict.device_id)
        if isinstance(verdict, HeartbeatUpdate):
            terminal = terminals[verdict.device_id]
            terminal.heartbeat, terminal.last_seen_at = verdict.data, now
            return Outcome(kind="heartbeat", stored=True, site_id=verdict.site_id, device_id=verdict.device_id)
        done = Outcome(
            kind="events", site_id=verdict.site_id, device_id=verdict.device_id, ack_event_id=verdict.event_id
        )
        if verdict.event_id in known:
            return replace(done, duplicate=True)
        known.add(verdict.event_id)  # a second copy inside this batch is a duplicate too
        new_events.append(_event_row(verdict))
        terminals[verdict.device_id].last_seen_at = now
        return replace(done, stored=True)

    @staticmethod
    def _sequence_findings(session: Session, terminals: dict[str, Terminal], events: list[Event]) -> None:
        by_device: dict[str, list[int]] = defaultdict(list)
        for e in events:
            by_device[e.device_id].append(e.seq)
        for device_id, seqs in by_device.items():
            terminal = terminals[device_id]
            open_gaps = session.scalars(
                select(Finding).where(
                    Finding.kind == GAP_KIND, Finding.device_id == device_id, Finding.resolved_at.is_(None)
                )
            ).all()
            gaps: list[Gap] = []
            for row in open_gaps:  # replays after an outage fill earlier gaps
                parsed = parse_gap_key(row.key)
                left = remaining(parsed[1], seqs) if parsed else None
                if left is not None:
                    row.resolved_at, row.resolved_by = utcnow(), "ingest: missing events arrived"
                    gaps += left
            terminal.last_seq, opened = advance(terminal.last_seq or 0, seqs)
            gaps += opened
            store(
                session,
                [
                    Finding(
                        key=g.key(device_id),
                        kind=GAP_KIND,
                        severity="warning",
                        site_id=terminal.site_id,
                        device_id=device_id,
                        detail=g.detail(device_id),
                    )
                    for g in gaps
                ],
            )

    @staticmethod
    def _clock(session: Session, terminals: dict[str, Terminal], events: list[Event], beats: set[str]) -> None:
        """Re-date unsynced events from a synced reference of the same boot; flag the ones that stay unverified."""
        for device_id in {e.device_id for e in events} | beats:
            terminal = terminals[device_id]
            refs = [
                r for r in (_heartbeat_ref(terminal), *(_event_ref(e) for e in events if e.device_id == device_id)) if r
            ]
            waiting = [e for e in events if e.device_id == device_id and e.clock_status == clock.UNVERIFIED]
            if refs:
                boots = {r.boot_id for r in refs}
                waiting += session.scalars(
                    select(Event).where(
                        Event.device_id == device_id, Event.clock_status == clock.UNVERIFIED, Event.boot_id.in_(boots)
                    )
                ).all()
            for e in {id(e): e for e in waiting}.values():
                verdict = clock.judge(
                    captured_at=e.captured_at,
                    clock_synced=False,
                    boot_id=e.boot_id,
                    monotonic_s=e.monotonic_s,
                    received_at=e.received_at or utcnow(),
                    refs=refs,
                )
                e.clock_status, e.corrected_at = verdict.status, verdict.corrected_at
                if verdict.status == clock.UNVERIFIED:
                    store(
                        session,
                        [
                            Finding(
                                key=clock.finding_key(device_id, e.boot_id),
                                kind=clock.CLOCK_KIND,
                                severity="warning",
                                site_id=e.site_id,
                                device_id=device_id,
                                detail=clock.finding_detail(device_id, e.boot_id),
                            )
                        ],
                    )


def _heartbeat_ref(terminal: Terminal) -> clock.ClockReference | None:
    beat = terminal.heartbeat or {}
    try:
        wall = datetime.fromisoformat(beat["sent_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return clock.reference(
        clock_synced=bool(beat.get("clock_synced")),
        wall=wall,
        boot_id=beat.get("boot_id"),
        monotonic_s=beat.get("monotonic_s"),
    )


def _event_ref(event: Event) -> clock.ClockReference | None:
    if event.clock_status != clock.SYNCED:
        return None
    return clock.reference(
        clock_synced=True, wall=event.captured_at, boot_id=event.boot_id, monotonic_s=event.monotonic_s
    )


def _event_row(accepted: AcceptedEvent) -> Event:
    event, match = accepted.event, accepted.event.match
    captured = event.captured_at.astimezone(UTC).replace(tzinfo=None)
    return Event(
        event_id=accepted.event_id,
        device_id=event.device_id,
        site_id=event.site_id,
        seq=event.seq,
        type=event.type,
        method=event.method,
        guard_id=event.guard_id,
        captured_at=captured,
        clock_synced=event.clock_synced,
        distance=match.distance if match else None,
        margin=match.margin if match else None,
        liveness=match.liveness if match else None,
        payload=accepted.raw,
        clock_status=clock.SYNCED if event.clock_synced else clock.UNVERIFIED,
        corrected_at=captured if event.clock_synced else None,
        boot_id=event.boot_id,
        monotonic_s=event.monotonic_s,
        received_at=utcnow(),
    )
