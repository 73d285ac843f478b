"""Settled-block counting: exact totals, the same in every process, late commits never lost."""

from __future__ import annotations

from collections import Counter

from server.metrics_counts import BlockCounter


class Table:
    """Committed rows by id (with a group), and a log of the ranges each count query scanned."""

    def __init__(self):
        self.rows: dict[int, str] = {}
        self.scans: list[tuple[int, int | None]] = []

    def add(self, ids, group: str = "") -> None:
        self.rows.update({i: group for i in ids})

    def max_id(self) -> int | None:
        return max(self.rows, default=None)

    def count(self, lo: int, hi: int | None) -> Counter[str]:
        self.scans.append((lo, hi))
        return Counter(g for i, g in self.rows.items() if i > lo and (hi is None or i <= hi))

    def total(self) -> Counter[str]:
        return Counter(self.rows.values())


def test_totals_are_exact_and_only_the_tail_is_rescanned():
    table = Table()
    table.add(range(1, 50_001))
    counter = BlockCounter(block=1000, settle_s=120, first_margin=10_000)
    totals, boundary = counter.totals(0.0, table.max_id(), table.count)
    assert totals == table.total() and boundary == 40_000
    assert table.scans == [(0, 40_000), (40_000, None)]  # the settled part once, the rest afresh
    table.scans.clear()
    table.add(range(50_001, 50_101))
    assert counter.totals(30.0, table.max_id(), table.count)[0] == table.total()
    assert table.scans == [(40_000, None)]


def test_a_late_commit_below_the_newest_id_is_still_counted():
    table = Table()
    table.add(range(1, 3001))
    table.add(range(3101, 3201))  # ids 3001-3100 belong to a transaction that has not committed yet
    counter = BlockCounter(block=100, settle_s=120, first_margin=500)
    counter.totals(0.0, table.max_id(), table.count)
    table.add(range(3001, 3101))  # it commits before the settle time runs out
    assert counter.totals(60.0, table.max_id(), table.count)[0] == table.total()
    assert counter.totals(200.0, table.max_id(), table.count)[0] == table.total()


def test_two_processes_report_the_same_total_whatever_they_saw_before():
    table = Table()
    early, late = BlockCounter(block=100, settle_s=120), BlockCounter(block=100, settle_s=120)
    for step in range(20):
        table.add(range(step * 500 + 1, step * 500 + 501), group="ab"[step % 2])
        now = step * 30.0
        first = early.totals(now, table.max_id(), table.count)[0]
        if step >= 10:  # a worker that started later
            assert late.totals(now, table.max_id(), table.count)[0] == first
        assert first == table.total()


def test_an_empty_table_counts_nothing():
    table = Table()
    assert BlockCounter().totals(0.0, table.max_id(), table.count) == (Counter(), 0)
    assert table.scans == []


def test_a_long_history_is_counted_over_several_scrapes_and_never_reported_half_done():
    table = Table()
    table.add(range(1, 10_001))
    ticks = iter(range(10_000))
    counter = BlockCounter(block=10, settle_s=120, first_margin=0, budget_s=2.5, clock=lambda: next(ticks))
    reported = []
    for scrape in range(6):
        totals, boundary = counter.totals(float(scrape), table.max_id(), table.count)
        assert boundary == 10_000  # rows received lately are above it from the first scrape on
        reported.append(totals)
    # 1000 ids per slice, three slices per scrape's budget: the 4th scrape finishes the 10 slices.
    assert reported[:3] == [None, None, None]
    assert reported[3:] == [table.total()] * 3
