"""Pure ingest rules: sequence gaps per terminal, and re-dating events from an unsynced clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from server import clock_correction as clock
from server.sequence import Gap, advance, parse_gap_key, remaining


def test_advance_opens_gaps_only_above_the_high_water_mark():
    assert advance(0, [1, 2, 3]) == (3, [])
    assert advance(3, [7, 5]) == (7, [Gap(4, 4), Gap(6, 6)])
    assert advance(7, [2, 7]) == (7, [])  # replays and old seqs open nothing


def test_remaining_narrows_or_closes_a_gap():
    assert remaining(Gap(4, 9), [1, 2]) is None  # nothing inside: the gap is untouched
    assert remaining(Gap(4, 9), [4, 5, 6, 7, 8, 9]) == []
    assert remaining(Gap(4, 9), [6]) == [Gap(4, 5), Gap(7, 9)]


def test_gap_keys_round_trip():
    assert parse_gap_key(Gap(4, 9).key("gate-1")) == ("gate-1", Gap(4, 9))
    assert parse_gap_key("cert:G-1:2026-01-01") is None


@settings(deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=60), max_size=80))
def test_whatever_the_arrival_order_the_open_gaps_are_exactly_the_missing_seqs(arrivals):
    top, gaps = 0, []
    for seq in arrivals:
        kept = []
        for gap in gaps:
            left = remaining(gap, [seq])
            kept += [gap] if left is None else left
        top, opened = advance(top, [seq])
        gaps = kept + opened
    missing = {s for g in gaps for s in range(g.lo, g.hi + 1)}
    assert missing == set(range(1, top + 1)) - set(arrivals)


NOW = datetime(2026, 11, 24, 8, 0)


def test_synced_events_keep_their_time_and_unsynced_ones_are_re_dated_from_the_same_boot():
    synced = clock.judge(captured_at=NOW, clock_synced=True, boot_id="b1", monotonic_s=10.0, received_at=NOW, refs=[])
    assert synced == clock.ClockVerdict(clock.SYNCED, NOW)
    # booted with a clock stuck in 1970; the first synced heartbeat came at monotonic 100 s, at 08:00 real time
    ref = clock.reference(clock_synced=True, wall=NOW.replace(tzinfo=UTC), boot_id="b1", monotonic_s=100.0)
    wrong = datetime(1970, 1, 1, 0, 1)
    fixed = clock.judge(
        captured_at=wrong,
        clock_synced=False,
        boot_id="b1",
        monotonic_s=40.0,
        received_at=NOW + timedelta(minutes=5),
        refs=[ref],
    )
    assert fixed == clock.ClockVerdict(clock.CORRECTED, NOW - timedelta(seconds=60))
    other_boot = clock.judge(
        captured_at=wrong, clock_synced=False, boot_id="b2", monotonic_s=40.0, received_at=NOW, refs=[ref]
    )
    assert other_boot.status == clock.UNVERIFIED and other_boot.corrected_at is None


def test_a_reference_that_puts_an_event_after_its_receipt_is_not_trusted():
    ref = clock.reference(clock_synced=True, wall=NOW + timedelta(hours=3), boot_id="b1", monotonic_s=100.0)
    verdict = clock.judge(
        captured_at=NOW, clock_synced=False, boot_id="b1", monotonic_s=99.0, received_at=NOW, refs=[ref]
    )
    assert verdict.status == clock.UNVERIFIED
