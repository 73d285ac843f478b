"""Durable event outbox: SQLite (WAL, synchronous=FULL); an event leaves only when the server acks it."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.events import encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    last_sent_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
"""


class OutboxFull(RuntimeError):
    """The outbox cannot take another event; earlier events are kept, never overwritten."""


@dataclass(frozen=True)
class Pending:
    seq: int
    event_id: str
    payload: bytes


class Outbox:
    """Thread-safe: the capture loop appends, the MQTT thread acks."""

    def __init__(self, path: Path, max_events: int = 1_000_000, min_free_mb: float = 50.0):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._folder = path.parent
        self._max_events, self._min_free_mb = max_events, min_free_mb
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed event survives power loss, not just a process crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('next_seq', 1)")

    def append(self, build: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        """Allocate the next sequence number, build the signed event with it and store both atomically."""
        with self._lock:
            self._check_room()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
                event = build(seq)
                self._db.execute(
                    "INSERT INTO outbox(seq, event_id, payload, created_at) VALUES (?, ?, ?, ?)",
                    (seq, event["event_id"], encode(event), time.time()),
                )
                self._db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq + 1,))
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                if "full" in str(exc):
                    raise OutboxFull(f"outbox disk is full ({exc}); free space on {self._folder}") from None
                raise
            except BaseException:
                self._rollback()
                raise
            return event

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _check_room(self) -> None:
        depth = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        if depth >= self._max_events:
            raise OutboxFull(
                f"outbox holds {depth} unacknowledged events (limit {self._max_events}); is the server reachable?"
            )
        free_mb = shutil.disk_usage(self._folder).free / 2**20
        if free_mb < self._min_free_mb:
            raise OutboxFull(f"only {free_mb:.0f} MB free on {self._folder} (need {self._min_free_mb:.0f} MB)")

    def due(self, resend_after_s: float, limit: int = 100) -> list[Pending]:
        """Events never sent, or sent longer ago than ``resend_after_s`` without an ack, oldest first."""
        cutoff = time.time() - resend_after_s
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, payload FROM outbox WHERE last_sent_at IS NULL OR last_sent_at < ? "
                "ORDER BY seq LIMIT ?",
                (cutoff, limit),
            ).fetchall()
        return [Pending(seq, event_id, bytes(payload)) for seq, event_id, payload in rows]

    def mark_sent(self, seqs: list[int]) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE outbox SET last_sent_at=?, attempts=attempts+1 WHERE seq=?", [(time.time(), s) for s in seqs]
            )

    def mark_all_unsent(self) -> None:
        """After a reconnect everything unacked is sent again, in order."""
        with self._lock:
            self._db.execute("UPDATE outbox SET last_sent_at=NULL")

    def ack(self, event_ids: list[str]) -> int:
        with self._lock:
            cur = self._db.executemany("DELETE FROM outbox WHERE event_id=?", [(e,) for e in event_ids])
            return cur.rowcount

    def next_seq(self) -> int:
        """The sequence number the next event gets: one more than every event ever captured here."""
        with self._lock:
            return self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]

    def depth(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
