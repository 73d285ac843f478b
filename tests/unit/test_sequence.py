"""Sequence-gap rules: gaps opened by a jump, what is left of a gap as events arrive, gap keys."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.sequence import Gap, advance, parse_gap_key, remaining


def test_in_order_seqs_open_no_gap():
    assert advance(0, [1, 2, 3]) == (3, [])
    assert advance(3, [4]) == (4, [])


def test_a_jump_opens_one_gap_per_missing_range():
    assert advance(4, [8]) == (8, [Gap(5, 7)])
    assert advance(0, [2, 5, 6, 9]) == (9, [Gap(1, 1), Gap(3, 4), Gap(7, 8)])


def test_seqs_arriving_out_of_order_in_one_batch_open_nothing():
    assert advance(0, [3, 1, 2]) == (3, [])


def test_seqs_at_or_below_the_high_water_mark_are_left_to_fill_gaps():
    assert advance(10, [2, 10, 7]) == (10, [])


def test_remaining_narrows_a_gap_and_says_when_a_seq_misses_it():
    gap = Gap(5, 9)
    assert remaining(gap, [4, 10]) is None
    assert remaining(gap, [5, 6, 7, 8, 9]) == []
    assert remaining(gap, [7]) == [Gap(5, 6), Gap(8, 9)]
    assert remaining(gap, [5, 9]) == [Gap(6, 8)]
    assert remaining(Gap(3, 3), [3]) == []


def test_gap_keys_and_details_name_the_device_and_range():
    assert Gap(5, 7).key("gate-1") == "gap:gate-1:5-7"
    assert Gap(5, 7).detail("gate-1") == "events 5-7 from gate-1 missing"
    assert Gap(6, 6).detail("gate-1") == "event 6 from gate-1 missing"
    assert parse_gap_key("gap:gate-1:5-7") == ("gate-1", Gap(5, 7))
    assert parse_gap_key("gap:gate.1_a-b:10-12") == ("gate.1_a-b", Gap(10, 12))
    for other in ("clock:gate-1:abc", "gap:gate-1:7-5", "gap:gate-1:x-1", "gap::1-2"):
        assert parse_gap_key(other) is None


@given(st.permutations(list(range(1, 31))), st.sets(st.integers(1, 30)), st.integers(1, 8))
def test_gaps_and_arrivals_always_account_for_every_seq(order, lost, batch):
    """Whatever the order and batching, open gaps are exactly the seqs not yet arrived below the top."""
    last, gaps = 0, []
    arrived: set[int] = set()
    delivered = [s for s in order if s not in lost]
    for start in range(0, len(delivered), batch):
        chunk = delivered[start : start + batch]
        below = [s for s in chunk if s <= last]
        narrowed = []
        for gap in gaps:
            parts = remaining(gap, below)
            narrowed += [gap] if parts is None else parts
        last, opened = advance(last, chunk)
        gaps = narrowed + opened
        arrived |= set(chunk)
    missing = {s for gap in gaps for s in range(gap.lo, gap.hi + 1)}
    assert missing == set(range(1, last + 1)) - arrived
    assert last == max(arrived, default=0)
