"""Exact row counts of append-only tables, cheap on every scrape: settled id blocks are counted once per process."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable

# count(lo, hi): rows with lo < id <= hi (hi None: no upper bound), per group ("" when ungrouped).
CountRange = Callable[[int, int | None], Counter[str]]

BLOCK = 10_000
# A transaction commits well within this after taking its ids, so no row can still appear below an id
# that was already the newest this long ago: counts of blocks below it never change again.
SETTLE_S = 120.0
# At a process's first scrape nothing is known to be settled yet: ids this far below the newest are.
FIRST_MARGIN = 1_000_000


class BlockCounter:
    """Totals of an append-only table, identical in every process that asks.

    Every process counts the same fixed blocks of ids, so two web workers scraped in turn report the
    same total and Prometheus never mistakes the difference for a counter reset. Only the unsettled
    tail (ids newer than ``SETTLE_S`` ago, at least) is counted again on each scrape.
    """

    def __init__(self, block: int = BLOCK, settle_s: float = SETTLE_S, first_margin: int = FIRST_MARGIN):
        self._block, self._settle_s, self._first_margin = block, settle_s, first_margin
        self._lock = threading.Lock()
        self._settled: Counter[str] = Counter()
        self._settled_to = 0  # every id <= this is in _settled
        self._floor: int | None = None
        self._samples: deque[tuple[float, int]] = deque()

    def boundary(self, now: float, max_id: int) -> int:
        """The block-aligned id below which counts are settled, given the newest id seen at ``now``."""
        self._samples.append((now, max_id))
        if self._floor is None:
            self._floor = max(0, max_id - self._first_margin)
        while self._samples and self._samples[0][0] <= now - self._settle_s:
            # The oldest sample is settled; newer ones still old enough replace it next round.
            self._floor = max(self._floor, self._samples.popleft()[1])
        return (self._floor // self._block) * self._block

    def totals(self, now: float, max_id: int | None, count: CountRange) -> tuple[Counter[str], int]:
        """Row counts per group, and the id boundary above which rows were counted afresh."""
        with self._lock:
            if max_id is None:
                return Counter(), 0
            settled_to = self.boundary(now, max_id)
            if settled_to > self._settled_to:
                self._settled.update(count(self._settled_to, settled_to))
                self._settled_to = settled_to
            fresh = count(self._settled_to, None)
            return self._settled + fresh, self._settled_to
