"""Ingest rules: verify, dedupe and store one MQTT message, or record why it was rejected."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from protocol.events import (
    ProtocolError,
    parse_event,
    parse_heartbeat,
    parse_status,
    verify_event,
)
from protocol.topics import TopicError, parse_topic
from server.models import Event, Reject, Terminal, utcnow

log = logging.getLogger("guardpost.ingest")
EXCERPT_CHARS = 2000


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


class Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _clean_text(text: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL; hostile payloads may contain it.
    return text[:limit].replace("\x00", "\ufffd")


def _excerpt(payload: bytes) -> str:
    return _clean_text(payload[:EXCERPT_CHARS].decode("utf-8", errors="replace"), EXCERPT_CHARS)


class Ingestor:
    """Turns (topic, payload) into committed rows. Raises only on infrastructure failure (DB down)."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def handle(self, topic: str, payload: bytes) -> Outcome:
        device_id = None
        try:
            address = parse_topic(topic)
            device_id = address.device_id
            if address.kind == "status" and not payload:
                return Outcome(kind="status")  # someone cleared a retained status: nothing to record
            with self._sessions() as session:
                terminal = session.get(Terminal, address.device_id)
                if terminal is None:
                    raise Rejected("unknown_terminal", f"terminal {address.device_id} is not registered")
                if not terminal.enabled:
                    raise Rejected("disabled_terminal", f"terminal {address.device_id} is disabled")
                if terminal.site_id != address.site_id:
                    raise Rejected(
                        "wrong_topic",
                        f"terminal {terminal.device_id} belongs to site {terminal.site_id}, not {address.site_id}",
                    )
                if address.kind == "events":
                    return self._event(session, terminal, topic, payload)
                if address.kind == "status":
                    terminal.online = parse_status(payload) == "online"
                elif address.kind == "heartbeat":
                    terminal.heartbeat = parse_heartbeat(payload).model_dump(mode="json", by_alias=True)
                else:
                    raise Rejected("wrong_topic", f"servers do not accept {address.kind} messages")
                terminal.last_seen_at = utcnow()
                session.commit()
                return Outcome(kind=address.kind, stored=True, site_id=address.site_id, device_id=device_id)
        except TopicError as exc:
            return self.record_reject(topic, None, payload, "wrong_topic", str(exc))
        except ProtocolError as exc:
            return self.record_reject(topic, device_id, payload, exc.reason, exc.detail)
        except Rejected as exc:
            return self.record_reject(topic, device_id, payload, exc.reason, exc.detail)

    def _event(self, session: Session, terminal: Terminal, topic: str, payload: bytes) -> Outcome:
        event, raw = parse_event(payload)
        if event.device_id != terminal.device_id or event.site_id != terminal.site_id:
            raise Rejected(
                "topic_mismatch",
                f"payload says {event.site_id}/{event.device_id} but was published on {topic}",
            )
        if not verify_event(raw, terminal.secret):
            raise Rejected("bad_signature", f"signature does not match terminal {terminal.device_id}'s secret")
        event_id = str(event.event_id)
        done = Outcome(kind="events", site_id=terminal.site_id, device_id=terminal.device_id, ack_event_id=event_id)
        if session.scalar(select(Event.id).where(Event.event_id == event_id)) is not None:
            return replace(done, duplicate=True)
        match = event.match
        session.add(
            Event(
                event_id=event_id,
                device_id=event.device_id,
                site_id=event.site_id,
                seq=event.seq,
                type=event.type,
                method=event.method,
                guard_id=event.guard_id,
                captured_at=event.captured_at.astimezone(UTC).replace(tzinfo=None),
                clock_synced=event.clock_synced,
                distance=match.distance if match else None,
                margin=match.margin if match else None,
                liveness=match.liveness if match else None,
                payload=raw,
            )
        )
        now = utcnow()
        terminal.last_seen_at = now
        terminal.last_seq = max(terminal.last_seq or 0, event.seq)
        try:
            session.commit()
        except IntegrityError:
            # Another ingest process stored the same event_id between our check and commit.
            session.rollback()
            return replace(done, duplicate=True)
        return replace(done, stored=True)

    def record_reject(self, topic: str, device_id: str | None, payload: bytes, reason: str, detail: str) -> Outcome:
        log.warning("rejected message on %s: %s: %s", topic[:200], reason, detail[:300])
        with self._sessions() as session:
            session.add(
                Reject(
                    topic=_clean_text(topic, 300),
                    device_id=device_id,
                    reason=reason,
                    detail=_clean_text(detail, 2000),
                    payload_excerpt=_excerpt(payload),
                    payload_size=len(payload),
                )
            )
            session.commit()
        return Outcome(kind="reject", reject_reason=reason, device_id=device_id)
