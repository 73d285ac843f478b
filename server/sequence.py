"""Pure sequence-gap rules: which per-terminal seqs are missing, and what is left of a gap once some arrive.

A terminal numbers its events 1, 2, 3... and never reuses a number. The server keeps only the highest seq
it has seen (``Terminal.last_seq``) and one open finding per missing range below it, so the state stays
small however long a gap stays open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

GAP_KIND = "missing_events"
_KEY = re.compile(r"^gap:(?P<device>[^:]+):(?P<lo>\d+)-(?P<hi>\d+)$")


@dataclass(frozen=True, order=True)
class Gap:
    """Seqs ``lo``..``hi`` (inclusive) of one terminal have not arrived."""

    lo: int
    hi: int

    def key(self, device_id: str) -> str:
        return f"gap:{device_id}:{self.lo}-{self.hi}"

    def detail(self, device_id: str) -> str:
        if self.lo == self.hi:
            return f"event {self.lo} from {device_id} missing"
        return f"events {self.lo}-{self.hi} from {device_id} missing"


def parse_gap_key(key: str) -> tuple[str, Gap] | None:
    """The device and range a finding key names, or None for keys that are not gap keys."""
    found = _KEY.match(key)
    if found is None or int(found["lo"]) > int(found["hi"]):
        return None
    return found["device"], Gap(int(found["lo"]), int(found["hi"]))


def advance(last_seq: int, seqs: Iterable[int]) -> tuple[int, list[Gap]]:
    """New highest seq and the gaps opened when ``seqs`` (new events) arrive after ``last_seq``.

    Seqs at or below ``last_seq`` open nothing: they are replays or fill older gaps (see ``remaining``).
    """
    gaps: list[Gap] = []
    top = last_seq
    for seq in sorted({s for s in seqs if s > last_seq}):
        if seq > top + 1:
            gaps.append(Gap(top + 1, seq - 1))
        top = seq
    return top, gaps


def remaining(gap: Gap, arrived: Iterable[int]) -> list[Gap] | None:
    """What is still missing of ``gap`` once ``arrived`` seqs are in; None when none of them falls in the gap."""
    inside = sorted({s for s in arrived if gap.lo <= s <= gap.hi})
    if not inside:
        return None
    parts: list[Gap] = []
    lo = gap.lo
    for seq in inside:
        if seq > lo:
            parts.append(Gap(lo, seq - 1))
        lo = seq + 1
    if lo <= gap.hi:
        parts.append(Gap(lo, gap.hi))
    return parts
