"""Ingest: verify, dedupe and store MQTT messages, a whole batch per transaction, or record why each was refused."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from protocol.faults import crash_point
from server import ingest_terminals
from server.ingest_rules import Refused, TerminalInfo, Verdict, check_message, device_of
from server.ingest_store import Message, Outcome, reject_row, store_batch
from server.ingest_terminals import TerminalRow
from server.models import utcnow

__all__ = ["DatabaseDown", "Ingestor", "Message", "Outcome"]

log = logging.getLogger("guardpost.ingest")
# The database is unreachable or busy: retry the whole batch later, never ack it.
DatabaseDown = (OperationalError, InterfaceError)


class Ingestor:
    """Turns messages into committed rows. Raises only when the database is down (``DatabaseDown``)."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions
        # Registrations as of the last transaction, to verify before taking any lock. Every transaction
        # compares them with the rows it locks and judges again the messages of a terminal that changed.
        self._terminals: dict[str, TerminalInfo] = {}

    def handle(self, topic: str, payload: bytes) -> Outcome:
        return self.handle_batch([Message(topic, payload, utcnow())])[0]

    def handle_batch(self, messages: Sequence[Message | tuple[str, bytes]]) -> list[Outcome]:
        """One transaction for the lot; a message that breaks it is retried alone, so it cannot poison the rest.

        Plain (topic, payload) pairs are taken as received now.
        """
        if not messages:
            return []
        if not all(isinstance(m, Message) for m in messages):
            now = utcnow()
            messages = [m if isinstance(m, Message) else Message(m[0], m[1], now) for m in messages]
        try:
            return self._transaction(messages)
        except DatabaseDown:
            raise
        except Exception as exc:  # anything else is about the messages, not the database
            failure: Exception = exc
        if len(messages) > 1:
            log.warning("a batch of %d failed (%s); storing its messages one by one", len(messages), failure)
            return [outcome for message in messages for outcome in self.handle_batch([message])]
        if isinstance(failure, IntegrityError):
            # Another ingest process stored the same row between our check and our commit: it is visible now.
            try:
                return self._transaction(messages)
            except DatabaseDown:
                raise
            except Exception as exc:
                failure = exc
        log.error("cannot store a message on %s: %r", messages[0].topic[:200], failure)
        return [self._internal_error(messages[0], failure)]

    def _transaction(self, messages: Sequence[Message]) -> list[Outcome]:
        devices = {d for m in messages if (d := device_of(m.topic))}
        # Verify first, holding no lock: parsing and signatures are most of the work, and other ingest
        # processes may write meanwhile.
        infos = {d: info for d in devices if (info := self._terminals.get(d))}
        verdicts = [_check(message, infos) for message in messages]
        with self._sessions() as session:
            if session.get_bind().dialect.name == "sqlite":
                # Take the write lock before reading what we will update: another process may be writing too.
                session.execute(text("BEGIN IMMEDIATE"))
            terminals = ingest_terminals.lock(session.connection(), devices)
            fresh = {d: _info(t) for d, t in terminals.items()}
            self._terminals.update(fresh)
            for gone in devices - fresh.keys():
                self._terminals.pop(gone, None)
            if fresh != infos:
                # A terminal new to us, or registered, disabled or given a new secret since: judge its messages again.
                changed = {d for d in fresh.keys() | infos.keys() if fresh.get(d) != infos.get(d)}
                verdicts = [
                    _check(message, fresh) if device_of(message.topic) in changed else verdict
                    for message, verdict in zip(messages, verdicts, strict=True)
                ]
            outcomes = store_batch(session, messages, verdicts, terminals, utcnow())
            ingest_terminals.write(session.connection(), terminals.values())
            crash_point("ingest_before_commit")
            session.commit()
        return outcomes

    def _internal_error(self, message: Message, failure: Exception) -> Outcome:
        device_id = device_of(message.topic)
        with self._sessions() as session:
            session.add(reject_row(message, "internal_error", repr(failure), device_id))
            session.commit()
        return Outcome(kind="reject", reject_reason="internal_error", device_id=device_id)


def _info(terminal: TerminalRow) -> TerminalInfo:
    return TerminalInfo(terminal.device_id, terminal.site_id, terminal.secret, terminal.enabled)


def _check(message: Message, terminals: dict[str, TerminalInfo]) -> Verdict:
    device_id = device_of(message.topic)
    try:
        return check_message(message.topic, message.payload, terminals.get(device_id) if device_id else None)
    except Exception as exc:  # a rule we did not foresee must not stop ingest
        log.exception("unexpected error checking a message on %s", message.topic[:200])
        return Refused("internal_error", repr(exc), device_id)
