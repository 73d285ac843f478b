"""Outbox: sequence numbers, ordering, acks, and durability across reopen."""

from __future__ import annotations

import sqlite3
import time
import uuid

import pytest

from edge_agent.outbox import Outbox, OutboxFull


def event(seq: int) -> dict:
    return {"event_id": str(uuid.uuid4()), "seq": seq}


def test_sequence_numbers_start_at_one_and_are_never_reused(tmp_path):
    box = Outbox(tmp_path / "o.db")
    first = box.append(event)
    second = box.append(event)
    assert (first["seq"], second["seq"]) == (1, 2)
    box.ack([first["event_id"], second["event_id"]])
    box.close()
    box = Outbox(tmp_path / "o.db")
    assert box.depth() == 0
    assert box.append(event)["seq"] == 3


def test_a_failed_build_allocates_nothing(tmp_path):
    box = Outbox(tmp_path / "o.db")

    def broken(seq: int) -> dict:
        raise ValueError("camera glitch")

    with pytest.raises(ValueError):
        box.append(broken)
    assert box.append(event)["seq"] == 1 and box.depth() == 1


def test_due_is_oldest_first_and_respects_resend_window(tmp_path):
    box = Outbox(tmp_path / "o.db")
    ids = [box.append(event)["event_id"] for _ in range(5)]
    assert [p.event_id for p in box.due(30)] == ids
    box.mark_sent([p.seq for p in box.due(30)[:3]])
    assert [p.event_id for p in box.due(30)] == ids[3:]
    time.sleep(0.01)
    assert [p.event_id for p in box.due(0)] == ids  # anything sent before "now" is due again
    box.mark_all_unsent()
    assert len(box.due(30)) == 5


def test_ack_removes_only_named_events(tmp_path):
    box = Outbox(tmp_path / "o.db")
    ids = [box.append(event)["event_id"] for _ in range(3)]
    assert box.ack([ids[1], "not-an-id"]) == 1
    assert [p.event_id for p in box.due(30)] == [ids[0], ids[2]]


def test_database_is_wal_with_full_sync(tmp_path):
    box = Outbox(tmp_path / "o.db")
    box.append(event)
    box.close()
    with sqlite3.connect(tmp_path / "o.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_full_outbox_refuses_new_events_and_keeps_the_old(tmp_path):
    box = Outbox(tmp_path / "o.db", max_events=2)
    kept = [box.append(event)["event_id"] for _ in range(2)]
    with pytest.raises(OutboxFull, match="2 unacknowledged events"):
        box.append(event)
    assert [p.event_id for p in box.due(30)] == kept
    box.ack(kept[:1])
    assert box.append(event)["seq"] == 3  # room again once the server acks


def test_low_disk_refuses_before_sqlite_runs_out(tmp_path):
    box = Outbox(tmp_path / "o.db", min_free_mb=10**12)
    with pytest.raises(OutboxFull, match="MB free"):
        box.append(event)
    assert box.depth() == 0
