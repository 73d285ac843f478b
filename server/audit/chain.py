"""Pure hash-chain rules: record and entry hashes, linking new entries, and checking a stretch of the chain.

Each entry binds one record's hash to its place (``seq``) and to the entry before it (``prev_hash``), so
changing a sealed record, removing an entry or reordering entries shows at that point, and rewriting the
whole chain changes every later entry hash, including any month anchor published before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from protocol.signing import canonical_json

GENESIS = "0" * 64
FORMAT = 1
MARKER_PREFIX = "start:"  # "start:event" marks where sealing of events began (see marker())


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def iso(moment: datetime | None) -> str | None:
    """Naive UTC as a fixed-width ISO string: the same text whatever the database returned it as."""
    return None if moment is None else moment.isoformat(timespec="microseconds")


def record_hash(kind: str, facts: Mapping[str, Any]) -> str:
    return digest({"v": FORMAT, "kind": kind, "facts": dict(facts)})


@dataclass(frozen=True)
class Sealable:
    """A record ready to be appended: what it is, where it lives, and the hash of its facts."""

    kind: str
    ref_id: int
    ref_key: str
    month: str
    site_id: str | None
    record_hash: str


@dataclass(frozen=True)
class Entry:
    seq: int
    kind: str
    ref_id: int
    ref_key: str
    month: str
    site_id: str | None
    record_hash: str
    prev_hash: str
    entry_hash: str
    sealed_at: datetime

    def computed_hash(self) -> str:
        return entry_hash(self.seq, self.prev_hash, self.sealed_at, self)

    @property
    def is_marker(self) -> bool:
        return self.kind.startswith(MARKER_PREFIX)


def entry_hash(seq: int, prev_hash: str, sealed_at: datetime, item: Sealable | Entry) -> str:
    return digest(
        {
            "v": FORMAT,
            "seq": seq,
            "prev": prev_hash,
            "sealed_at": iso(sealed_at),
            "kind": item.kind,
            "ref_id": item.ref_id,
            "ref_key": item.ref_key,
            "month": item.month,
            "site_id": item.site_id,
            "record": item.record_hash,
        }
    )


def link(head: Entry | None, items: Iterable[Sealable], sealed_at: datetime) -> list[Entry]:
    """New entries after ``head`` (None: the chain is empty), in the order given."""
    seq, prev = (0, GENESIS) if head is None else (head.seq, head.entry_hash)
    entries = []
    for item in items:
        seq += 1
        h = entry_hash(seq, prev, sealed_at, item)
        fields = (item.kind, item.ref_id, item.ref_key, item.month, item.site_id, item.record_hash)
        entries.append(Entry(seq, *fields, prev, h, sealed_at))
        prev = h
    return entries


def marker(kind: str, backfill_through: int, month: str) -> Sealable:
    """Marks where sealing of ``kind`` began: its rows up to ``backfill_through`` existed before the chain did."""
    return Sealable(MARKER_PREFIX + kind, backfill_through, kind, month, None, marker_hash(kind, backfill_through))


def marker_hash(kind: str, backfill_through: int) -> str:
    return record_hash("start", {"kind": kind, "backfill_through": backfill_through})


@dataclass(frozen=True)
class Problem:
    """One finding of verification; ``message`` is the one line a user reads."""

    category: str  # modified, deleted, altered, missing, broken_link, unsealed, sealed_late, anchor
    message: str


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _span(delay: timedelta) -> str:
    minutes = int(delay.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


@dataclass
class LinkChecker:
    """Feed entries in ``seq`` order from ``first_seq`` on; each gap, altered entry or broken link is reported once."""

    first_seq: int = 1
    previous: Entry | None = None
    checked: int = 0
    _expected: int = field(init=False)

    def __post_init__(self) -> None:
        self._expected = self.first_seq if self.previous is None else self.previous.seq + 1

    def feed(self, entry: Entry) -> list[Problem]:
        problems = []
        if entry.seq < self._expected:
            problems.append(
                Problem("altered", f"chain entry {entry.seq} is out of order or duplicated (expected {self._expected})")
            )
            return problems
        if entry.seq > self._expected:
            gone = f"{self._expected}" if entry.seq == self._expected + 1 else f"{self._expected}..{entry.seq - 1}"
            problems.append(Problem("missing", f"chain entries {gone} are missing: removed from the chain"))
        elif self.previous is not None and entry.prev_hash != self.previous.entry_hash:
            problems.append(
                Problem(
                    "broken_link",
                    f"broken link: chain entry {entry.seq} does not point to entry {self.previous.seq} "
                    f"({entry.prev_hash[:16]}... instead of {self.previous.entry_hash[:16]}...): "
                    "the chain was rewritten",
                )
            )
        elif self.previous is None and entry.seq == 1 and entry.prev_hash != GENESIS:
            problems.append(Problem("broken_link", "broken link: chain entry 1 does not start from the genesis hash"))
        if (altered := check_entry_hash(entry)) is not None:
            problems.append(altered)
        self.previous, self._expected = entry, entry.seq + 1
        self.checked += 1
        return problems


def check_entry_hash(entry: Entry) -> Problem | None:
    if entry.computed_hash() != entry.entry_hash:
        return Problem("altered", f"altered chain entry {entry.seq}: its fields no longer give its entry hash")
    return None


def check_record(entry: Entry, facts: Mapping[str, Any] | None, label: str) -> Problem | None:
    """The record an entry seals, as the database holds it now (None: its row is gone)."""
    if facts is None:
        return Problem(
            "deleted",
            f"deleted: {label} was sealed {_when(entry.sealed_at)} and its row is gone (chain entry {entry.seq})",
        )
    if record_hash(entry.kind, facts) != entry.record_hash:
        return Problem(
            "modified",
            f"modified: {label} was changed after it was sealed {_when(entry.sealed_at)} (chain entry {entry.seq})",
        )
    return None


def check_marker(entry: Entry) -> Problem | None:
    if marker_hash(entry.ref_key, entry.ref_id) != entry.record_hash:
        return Problem("altered", f"altered chain entry {entry.seq}: the start marker of {entry.ref_key} was changed")
    return None


def check_delay(
    entry: Entry, arrival: datetime, max_delay: timedelta, backfill_through: int | None, label: str
) -> Problem | None:
    """A record sealed long after it arrived was not there when it claims to have been (or the sealer was down)."""
    if backfill_through is not None and entry.ref_id <= backfill_through:
        return None  # it existed before sealing began: the chain vouches for it from then on only
    delay = entry.sealed_at - arrival
    if delay <= max_delay:
        return None
    return Problem(
        "sealed_late",
        f"sealed late: {label} arrived {_when(arrival)} but was sealed only {_when(entry.sealed_at)} "
        f"({_span(delay)} later; chain entry {entry.seq}): inserted after the fact, or the sealer was not running",
    )


def check_unsealed(label: str, arrival: datetime, now: datetime, max_delay: timedelta) -> Problem | None:
    """A record not in the chain: fine while it is younger than the sealing delay, suspicious after."""
    age = now - arrival
    if age <= max_delay:
        return None
    return Problem(
        "unsealed",
        f"not sealed: {label} arrived {_when(arrival)} and is not in the chain {_span(age)} later: "
        "inserted after the fact, or the sealer is not running",
    )


@dataclass(frozen=True)
class Anchor:
    """The month's last entry: publishing its hash pins every entry up to it, of every month."""

    month: str
    seq: int
    entry_hash: str
    counts: dict[str, int]

    def line(self) -> str:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items())) or "no records"
        return f"anchor {self.month}: {self.entry_hash} (chain entry {self.seq}; {counts})"


def month_anchor(month: str, last: Entry | None, counts: Mapping[str, int]) -> Anchor | None:
    return None if last is None else Anchor(month, last.seq, last.entry_hash, dict(counts))


def check_anchor(given: str, found: Entry | None) -> Problem | None:
    """``found`` is the entry whose stored hash is the published anchor, if any is left."""
    if found is None:
        return Problem(
            "anchor",
            f"anchor {given[:16]}... is not in the chain: entries up to it were rewritten after it was published",
        )
    return None
