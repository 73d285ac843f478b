"""Background duties of the server: recompute queued duty days, watch for silent terminals, seal the audit chain."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.audit.sealer import seal_pending
from server.compliance import terminal_offline_findings
from server.duty.service import now_utc, recompute_dirty

log = logging.getLogger("guardpost.monitor")


def run_once(sessions: sessionmaker[Session], offline_after: timedelta) -> None:
    with sessions() as session:
        now = now_utc()
        done = recompute_dirty(session, now)
        raised, resolved = terminal_offline_findings(session, now.replace(tzinfo=None), offline_after)
        session.commit()
    if done is not None:
        log.info("duty logs recomputed: %d record(s), %d finding(s) raised", done.records, done.findings_raised)
    if raised or resolved:
        log.info("terminals: %d went silent, %d came back", raised, resolved)


def seal_once(sessions: sessionmaker[Session]) -> None:
    """Its own transaction and its own failure: a bad duty day must not stop the sealing, nor the reverse."""
    with sessions() as session:
        result = seal_pending(session)
    if result.total and result.head is not None:
        log.info("audit chain: sealed %d record(s), head at entry %d", result.total, result.head.seq)


class Monitor:
    """One per deployment (it recomputes shared tables): run it in one server process only."""

    def __init__(self, sessions: sessionmaker[Session], every_s: float = 30.0, offline_after_s: float = 300.0):
        self._sessions, self._every = sessions, every_s
        self._offline_after = timedelta(seconds=offline_after_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self._guarded(run_once, self._sessions, self._offline_after)
            self._guarded(seal_once, self._sessions)

    def _guarded(self, step, *args) -> None:
        try:
            step(*args)
        except OperationalError as exc:
            log.error("monitor: database unavailable (%s); will retry", exc.__class__.__name__)
        except Exception:  # the monitor must outlive a bad row; the next round tries again
            log.exception("monitor round failed")
