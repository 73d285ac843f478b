"""Batch building as pure functions: what changed since the ledger, tombstones, per-company batches."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.reporting.plan import DELETED_DIGEST, LedgerEntry, changes, group
from server.reporting.sources import SourceRecord

DAY = date(2026, 4, 1)


def record(key: str, company: str | None = "C-01", day: date | None = None, **fields) -> SourceRecord:
    return SourceRecord("duty_logs", key, company, day, {"key": key, **fields})


def reported(*records: SourceRecord, version: int = 1) -> dict[str, LedgerEntry]:
    return {r.key: LedgerEntry(r.digest, version, False, r.record_date, 1) for r in records}


def test_the_digest_follows_the_fields_and_not_their_order():
    a = SourceRecord("guards", "G-1", None, None, {"name": "李娜", "sex": "female"})
    b = SourceRecord("guards", "G-1", None, None, {"sex": "female", "name": "李娜"})
    assert a.digest == b.digest
    assert a.digest != SourceRecord("guards", "G-1", None, None, {"name": "李娜", "sex": "male"}).digest


def test_new_records_start_at_version_one_and_unchanged_ones_are_left_out():
    old, same = record("a", status="absent"), record("b", status="present")
    found = changes([record("a", status="present"), same, record("c", status="late")], reported(old, same))
    assert [(c.key, c.op, c.version) for c in found.changes] == [("a", "upsert", 2), ("c", "upsert", 1)]
    assert (found.new, found.changed, found.deleted) == (1, 1, 0)
    assert changes([same], reported(same)).changes == []


def test_a_record_gone_from_the_window_gets_a_tombstone_and_comes_back_as_a_new_version():
    kept = record("kept", day=DAY)
    gone = record("gone", day=DAY, status="unscheduled")
    older = record("older", day=date(2026, 2, 1))
    ledger = reported(kept, gone, older)
    found = changes([kept], ledger, tombstones_from=date(2026, 3, 1))
    assert [(c.key, c.op, c.version, c.digest) for c in found.changes] == [("gone", "delete", 2, DELETED_DIGEST)]
    assert found.deleted == 1
    # Outside the window (older) and without a window (other kinds), nothing is deleted.
    assert changes([kept], ledger).changes == []
    ledger["gone"] = LedgerEntry(DELETED_DIGEST, 2, True, DAY, 2)
    assert changes([kept], ledger, tombstones_from=date(2026, 3, 1)).changes == []  # tombstoned once only
    back = changes([kept, gone], ledger, tombstones_from=date(2026, 3, 1)).changes
    assert [(c.key, c.op, c.version) for c in back] == [("gone", "upsert", 3)]


def test_batches_are_per_company_in_a_stable_order_and_never_larger_than_the_batch_size():
    items = changes(
        [record(f"k{n:02d}", company=("C-02", "C-01", None)[n % 3], day=date(2026, 4, 1 + n % 5)) for n in range(11)],
        {},
    ).changes
    batches = group(items, 2)
    assert [company for company, _ in batches] == [None, None, "C-01", "C-01", "C-02", "C-02"]
    assert all(1 <= len(chunk) <= 2 for _, chunk in batches)
    assert all(c.company_id == company for company, chunk in batches for c in chunk)
    assert group(list(reversed(items)), 2) == batches
    with pytest.raises(ValueError):
        group(items, 0)


records_strategy = st.lists(
    st.builds(
        record,
        key=st.sampled_from([f"k{n}" for n in range(12)]),
        company=st.sampled_from(["C-01", "C-02", None]),
        day=st.just(DAY),
        status=st.sampled_from(["present", "late", "absent"]),
    ),
    unique_by=lambda r: r.key,
)


@given(first=records_strategy, second=records_strategy, size=st.integers(1, 5))
def test_every_change_goes_in_exactly_one_batch_and_a_second_look_finds_nothing(first, second, size):
    ledger: dict[str, LedgerEntry] = {}
    for snapshot in (first, second):
        found = changes(snapshot, ledger, tombstones_from=DAY)
        batched = [c for _, chunk in group(found.changes, size) for c in chunk]
        assert sorted(c.key for c in batched) == sorted(c.key for c in found.changes)
        assert len({c.key for c in batched}) == len(batched)
        for c in batched:  # what outbox.build writes to the ledger in the same transaction
            ledger[c.key] = LedgerEntry(c.digest, c.version, c.op == "delete", c.record_date, 1)
        assert changes(snapshot, ledger, tombstones_from=DAY).changes == []
        current = {r.key for r in snapshot}
        assert {k for k, e in ledger.items() if not e.deleted} == current
