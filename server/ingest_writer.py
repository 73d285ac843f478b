"""The single ingest writer: queue received messages, commit them in batches, then ack the terminals and the broker."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import NamedTuple

from protocol.events import MAX_ACK_IDS, build_ack
from protocol.faults import crash_point
from protocol.topics import acks_topic
from server.ingest import DatabaseDown, Ingestor, Message, Outcome

log = logging.getLogger("guardpost.ingest")
DB_RETRY_MAX_S = 30.0


class Pending(NamedTuple):
    """A received message and what the broker needs to hear back about it once it is committed."""

    message: Message
    mid: int
    qos: int
    generation: int


@dataclass
class Stats:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0

    def add(self, outcomes: Sequence[Outcome]) -> None:
        self.messages += len(outcomes)
        self.stored += sum(1 for o in outcomes if o.kind == "events" and o.stored)
        self.duplicates += sum(1 for o in outcomes if o.duplicate)
        self.rejected += sum(1 for o in outcomes if o.reject_reason)
        self.batches += 1

    def line(self) -> str:
        return "ingest stats: " + " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


class BatchWriter:
    """One thread owns the database; each transaction takes what arrived while the previous one was stored.

    Terminals and the broker send more only as acks come back (outbox and in-flight windows), so a batch
    that lingers for more messages holds back the very messages it waits for: with a 50 ms linger ingest
    passed ~20 % fewer events through Mosquitto (benchmarks/README.md). A batch of ``min_batch`` or more
    therefore closes as soon as nothing more is queued (group commit: batches grow with the load). A
    smaller one would pay a transaction's fixed cost for a few messages, and under a slower broker that
    cost starves the broker itself, so it waits for more: up to ``max_wait_s`` in all, closing early once
    nothing has arrived for ``quiet_s`` (a lone check-in is stored at once).
    """

    def __init__(
        self,
        ingestor: Ingestor,
        *,
        publish: Callable[[str, bytes], object],
        ack: Callable[[list[Pending]], object],
        capacity: int,
        max_batch: int = 500,
        min_batch: int = 200,
        max_wait_s: float = 0.05,
        quiet_s: float = 0.005,
        stats_every_s: float = 60.0,
    ):
        self._ingestor = ingestor
        self._publish = publish
        self._ack = ack
        # A deque and an Event rather than queue.Queue: two lock round trips less per message.
        self._pending: deque[Pending] = deque()
        self._capacity = capacity
        self._wake = threading.Event()
        self._idle = False
        self._max_batch = max_batch
        self._min_batch = min_batch
        self._max_wait_s = max_wait_s
        self._quiet_s = quiet_s
        self._stats_every_s = stats_every_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self.stats = Stats()

    def submit(self, pending: Pending) -> bool:
        """Queue a message; blocks while the queue is full. False when stopping: the message stays unacked."""
        while len(self._pending) >= self._capacity:
            # Blocking paho's thread stops it reading, so TCP pushes back on a broker that ignores our window.
            if self._stopping.wait(0.005):
                return False
        if self._stopping.is_set():
            return False
        self._pending.append(pending)
        if self._idle:
            self._wake.set()
        return True

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish (and ack) the batch in hand; what is still queued stays unacked for the broker to redeliver."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        log.info("%s", self.stats.line())

    def _run(self) -> None:
        logged_at, logged = time.monotonic(), self.stats.messages
        while not self._stopping.is_set():
            batch = self._collect()
            if batch:
                outcomes = self._store(batch)
                if outcomes is None:
                    return  # stopping while the database is down: the broker keeps the messages
                crash_point("ingest_after_commit")
                try:
                    self._acknowledge(batch, outcomes)
                except Exception:
                    # The rows are committed; unacked copies come back after a reconnect and are acked then.
                    log.exception("could not ack a batch of %d", len(batch))
                self.stats.add(outcomes)
            if time.monotonic() - logged_at >= self._stats_every_s and self.stats.messages != logged:
                log.info("%s", self.stats.line())
                logged_at, logged = time.monotonic(), self.stats.messages

    def _collect(self) -> list[Pending]:
        first = self._next(0.2)
        if first is None:
            return []
        batch = [first]
        deadline = time.monotonic() + self._max_wait_s
        while len(batch) < self._max_batch:
            if self._pending:
                batch.append(self._pending.popleft())
                continue
            if len(batch) >= self._min_batch:
                break  # worth a commit: waiting for more would hold back their senders' next messages
            wait = min(deadline - time.monotonic(), self._quiet_s)
            pending = self._next(wait) if wait > 0 else None
            if pending is None:
                break
            batch.append(pending)
        return batch

    def _next(self, timeout: float) -> Pending | None:
        """The next message, waiting up to ``timeout`` for one."""
        if self._pending:
            return self._pending.popleft()
        self._wake.clear()
        self._idle = True
        try:
            # Look again after saying we are idle: submit() wakes us only if it saw the flag.
            if not self._pending:
                self._wake.wait(timeout)
            return self._pending.popleft() if self._pending else None
        finally:
            self._idle = False

    def _store(self, batch: list[Pending]) -> list[Outcome] | None:
        delay = 0.5
        while True:
            try:
                return self._ingestor.handle_batch([p.message for p in batch])
            except DatabaseDown as exc:
                # Database unreachable: hold the batch (unacked) and retry, never drop it.
                log.error(
                    "database unavailable (%s); %d messages wait unacked, retrying in %.1fs",
                    exc.__class__.__name__,
                    len(batch),
                    delay,
                )
            except Exception:
                log.exception("unexpected error storing a batch of %d; retrying in %.1fs", len(batch), delay)
            if self._stopping.wait(delay):
                return None
            delay = min(delay * 2, DB_RETRY_MAX_S)

    def _acknowledge(self, batch: list[Pending], outcomes: list[Outcome]) -> None:
        """Terminal acks first (one message per terminal per batch), then the broker's PUBACKs, all at once."""
        ids: dict[tuple[str, str], list[str]] = defaultdict(list)
        for outcome in outcomes:
            if outcome.ack_event_id and outcome.site_id and outcome.device_id:
                # Every copy is acked, as the protocol says, even two copies in one batch.
                ids[(outcome.site_id, outcome.device_id)].append(outcome.ack_event_id)
        for (site_id, device_id), event_ids in ids.items():
            for start in range(0, len(event_ids), MAX_ACK_IDS):
                self._publish(acks_topic(site_id, device_id), build_ack(event_ids[start : start + MAX_ACK_IDS]))
        self._ack(batch)
